/// Everything a source reported: the input of the desired-state computation.
public struct ClusterState: Hashable, Sendable {
    public var services: [Service]
    public var endpointSlices: [EndpointSlice]

    public init(services: [Service] = [], endpointSlices: [EndpointSlice] = []) {
        self.services = services
        self.endpointSlices = endpointSlices
    }
}
