/// Every object the sources reported, kept up to date change by change: the change tracker. It
/// says which Services a change touches, so that only those are computed again, and drops changes
/// that change nothing.
public struct ClusterObjects: Sendable {
    public private(set) var services: [ObjectName: Service] = [:]
    public private(set) var endpointSlices: [ObjectName: EndpointSlice] = [:]
    public private(set) var nodes: [String: ClusterNode] = [:]
    /// The slices of each Service, by the Service they name.
    private var slicesByService: [ObjectName: Set<ObjectName>] = [:]

    public init() {}

    public init(_ state: ClusterState) {
        _ = apply(ClusterChanges(adding: state))
    }

    /// What a batch of changes touched.
    public struct Touched: Sendable {
        /// Services whose own object or slices changed.
        public var services: Set<ObjectName> = []
        /// Node objects changed: every Service may be affected (topology).
        public var nodes = false
        public var servicesChanged = 0
        public var endpointSlicesChanged = 0

        public var isEmpty: Bool { services.isEmpty && !nodes }
    }

    /// Takes the changes in; an object equal to the one held is no change.
    public mutating func apply(_ changes: ClusterChanges) -> Touched {
        var touched = Touched()
        for (name, service) in changes.services where services[name] != service {
            services[name] = service
            touched.services.insert(name)
            touched.servicesChanged += 1
        }
        for (name, slice) in changes.endpointSlices where endpointSlices[name] != slice {
            if let old = endpointSlices[name], let owner = Self.owner(of: old) {
                slicesByService[owner]?.remove(name)
                if slicesByService[owner]?.isEmpty == true { slicesByService[owner] = nil }
                touched.services.insert(owner)
            }
            endpointSlices[name] = slice
            if let slice, let owner = Self.owner(of: slice) {
                slicesByService[owner, default: []].insert(name)
                touched.services.insert(owner)
            }
            touched.endpointSlicesChanged += 1
        }
        for (name, node) in changes.nodes where nodes[name] != node {
            nodes[name] = node
            touched.nodes = true
        }
        return touched
    }

    /// Service names in order: the order in which claims on one virtual server are settled.
    public var serviceNames: [ObjectName] { services.keys.sorted() }

    /// The slices kube-proxy would use for a Service, in name order.
    public func slices(of service: ObjectName) -> [EndpointSlice] {
        (slicesByService[service] ?? []).sorted().compactMap { endpointSlices[$0] }
    }

    public func node(named name: String) -> ClusterNode? { nodes[name] }

    /// Everything, in name order.
    public var state: ClusterState {
        ClusterState(services: serviceNames.map { services[$0]! },
                     endpointSlices: endpointSlices.keys.sorted().map { endpointSlices[$0]! },
                     nodes: nodes.keys.sorted().map { nodes[$0]! })
    }

    /// The Service a slice belongs to; nil for slices kube-proxy ignores.
    private static func owner(of slice: EndpointSlice) -> ObjectName? {
        guard !slice.isForAnotherProxy, let service = slice.serviceName else { return nil }
        return ObjectName(namespace: slice.metadata.namespace, name: service)
    }
}
