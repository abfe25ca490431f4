import Proxy

/// A collection the source lists and watches, and how to read its objects.
public struct APIResource<Object: Hashable & Sendable>: Sendable {
    /// `services`: the collection's name, for logs and metrics.
    public let name: String
    /// The all-namespaces collection, e.g. `/api/v1/services`.
    public let path: String
    /// nil for objects that are not for this proxy. The decoder is a `JSONDecoder`'s, at the object.
    let decode: @Sendable (any Decoder) throws(LoadError) -> Object?

    init(name: String, path: String, decode: @escaping @Sendable (any Decoder) throws(LoadError) -> Object?) {
        self.name = name
        self.path = path
        self.decode = decode
    }
}

extension APIResource where Object == Service {
    public static var services: Self {
        APIResource(name: "services", path: "/api/v1/services") { object throws(LoadError) in
            let service = try Service(apiObject: object, source: "services")
            return service.metadata.isForAnotherProxy ? nil : service
        }
    }
}

extension APIResource where Object == EndpointSlice {
    public static var endpointSlices: Self {
        APIResource(name: "endpointslices", path: "/apis/discovery.k8s.io/v1/endpointslices") { object throws(LoadError) in
            let slice = try EndpointSlice(apiObject: object, source: "endpointslices")
            return slice.isForAnotherProxy ? nil : slice
        }
    }
}
