import IPVS

/// A Service port as kube-proxy names it: `default/web:http` (the port name is omitted when empty).
public struct ServicePortName: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var namespace: String
    public var name: String
    public var port: String
    public var `protocol`: IPProtocol

    public init(namespace: String, name: String, port: String, protocol: IPProtocol) {
        self.namespace = namespace
        self.name = name
        self.port = port
        self.protocol = `protocol`
    }

    public var description: String { port.isEmpty ? "\(namespace)/\(name)" : "\(namespace)/\(name):\(port)" }

    public static func < (a: ServicePortName, b: ServicePortName) -> Bool {
        (a.namespace, a.name, a.port, a.protocol.rawValue) < (b.namespace, b.name, b.port, b.protocol.rawValue)
    }
}

/// One virtual server kipvs wants, with its real servers and the Service port it serves.
public struct DesiredVirtualServer: Hashable, Sendable {
    public var server: VirtualServer
    public var realServers: [RealServerKey: RealServer]
    public var service: ServicePortName

    public init(server: VirtualServer, realServers: [RealServer] = [], service: ServicePortName) {
        self.server = server
        self.realServers = Dictionary(realServers.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
        self.service = service
    }
}

/// What the kernel should hold for a set of Services and EndpointSlices on one node.
public struct DesiredState: Hashable, Sendable {
    /// Something in an object that kipvs ignored or could not honour.
    public struct Warning: Hashable, Sendable, CustomStringConvertible {
        /// `Service default/web`
        public var object: String
        public var message: String

        public init(object: String, message: String) {
            self.object = object
            self.message = message
        }

        public var description: String { "\(object): \(message)" }
    }

    public var virtualServers: [VirtualServerKey: DesiredVirtualServer]
    /// Virtual IPs to bind on the dummy interface: cluster IPs, external IPs and load-balancer IPs.
    /// The caller leaves out those already assigned to another interface of the node.
    public var addresses: Set<IPAddress>
    /// What nf_tables needs around IPVS.
    public var packetPath: PacketPathState
    public var warnings: [Warning]

    public init(virtualServers: [VirtualServerKey: DesiredVirtualServer] = [:], addresses: Set<IPAddress> = [],
                packetPath: PacketPathState = PacketPathState(), warnings: [Warning] = []) {
        self.virtualServers = virtualServers
        self.addresses = addresses
        self.packetPath = packetPath
        self.warnings = warnings
    }

    /// Computes the desired state with kube-proxy's IPVS-mode semantics.
    public init(_ cluster: ClusterState, node: NodeConfig) {
        let objects = ClusterObjects(cluster)
        let index = DesiredStateIndex(objects, node: node.observing(objects))
        self = index.state
        warnings = index.warnings
    }
}

struct ServiceReference: Hashable {
    var namespace: String
    var name: String
}
