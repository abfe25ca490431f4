/// Everything a source reported: the input of the desired-state computation.
public struct ClusterState: Hashable, Sendable {
    public var services: [Service]
    public var endpointSlices: [EndpointSlice]
    /// The Node objects the source has: the agent's own, from the Kubernetes API; any, from files.
    public var nodes: [ClusterNode]

    public init(services: [Service] = [], endpointSlices: [EndpointSlice] = [], nodes: [ClusterNode] = []) {
        self.services = services
        self.endpointSlices = endpointSlices
        self.nodes = nodes
    }

    /// The Node object named `name`, if the source has it.
    public func node(named name: String) -> ClusterNode? {
        nodes.first { $0.name == name }
    }
}
