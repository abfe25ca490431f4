// Entry points for objects that arrive one at a time from the Kubernetes API (list items and
// watch events) rather than from manifest files. List items carry no `kind`, so none is required.
// Nothing is filtered here: `isForAnotherProxy` tells whether kube-proxy would see the object.
// `decoder` is one of Foundation's `JSONDecoder`, at the object: only the fields kipvs reads are
// decoded from it.

extension Service {
    /// One v1 Service from the API's JSON. `source` names it in errors.
    public init(apiObject decoder: any Decoder, source: String) throws(LoadError) {
        self = try decodeAPIObject(Field(json: decoder), kind: "Service", source: source, as: Service.init)
    }
}

extension EndpointSlice {
    /// One discovery.k8s.io/v1 EndpointSlice from the API's JSON. `source` names it in errors.
    public init(apiObject decoder: any Decoder, source: String) throws(LoadError) {
        self = try decodeAPIObject(Field(json: decoder), kind: "EndpointSlice", source: source, as: EndpointSlice.init)
    }
}

private func decodeAPIObject<T>(_ object: Field, kind: String, source: String,
                                as make: (Field, ObjectMeta) throws -> T) throws(LoadError) -> T {
    let metadata: ObjectMeta
    do {
        metadata = try ObjectMeta(object, names: kind == "EndpointSlice" ? .dns1123Subdomain : .dns1123Label)
    } catch {
        throw LoadError(problems: [.init(source: source, object: kind, message: "\(error)")])
    }
    do {
        return try make(object, metadata)
    } catch {
        throw LoadError(problems: [.init(source: source, object: "\(kind) \(metadata.qualifiedName)", message: "\(error)")])
    }
}
