import IPVS

/// An address, protocol and port that a Service is reached on.
public struct ServiceAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var `protocol`: IPProtocol
    public var port: UInt16

    public init(_ address: IPAddress, _ protocol: IPProtocol, _ port: UInt16) {
        self.address = address
        self.protocol = `protocol`
        self.port = port
    }

    public var description: String { "\(`protocol`) \(Endpoint.format(address, port))" }

    public static func < (a: ServiceAddress, b: ServiceAddress) -> Bool {
        (a.address, a.protocol.rawValue, a.port) < (b.address, b.protocol.rawValue, b.port)
    }
}

/// What the packet path around IPVS needs to know of the desired Services, beyond the virtual
/// servers themselves: which traffic is masqueraded, marked, firewalled or hairpinned.
public struct PacketPathState: Hashable, Sendable {
    /// Every cluster IP and port: masqueraded when the client is not a pod.
    public var clusterIPs: Set<ServiceAddress> = []
    /// NodePorts, external IPs and load-balancer IPs of `externalTrafficPolicy: Cluster` Services:
    /// always masqueraded, so replies come back through this node.
    public var external: Set<ServiceAddress> = []
    /// The same for `externalTrafficPolicy: Local` Services, mapped to the firewall mark of a
    /// virtual server with every endpoint: in-cluster clients (pods, the node) use that one, while
    /// outside clients keep their address and reach local endpoints only.
    public var inClusterMarks: [ServiceAddress: UInt32] = [:]
    /// Load-balancer IPs and ports with `loadBalancerSourceRanges`: clients outside them are dropped.
    public var firewalls: [ServiceAddress: [CIDR]] = [:]
    /// Endpoints on this node: a pod reaching itself through a Service is masqueraded (hairpin).
    public var localEndpoints: Set<IPAddress> = []
    /// `healthCheckNodePort`s served on this node; the VIP filter lets them through.
    public var healthCheckNodePorts: Set<UInt16> = []

    public init() {}
}

/// Firewall marks of the virtual servers that serve in-cluster clients of
/// `externalTrafficPolicy: Local` Services. IPVS looks fwmark services up before address ones.
public enum InClusterFirewallMarks {
    /// Marks are `base | hash`: a range of their own, so kipvs knows which fwmark services are its.
    public static let base: UInt32 = 0x0B00_0000
    public static let hashBits: UInt32 = 20
    public static let range: ClosedRange<UInt32> = base...(base | (1 << hashBits - 1))

    /// A mark for each name, stable while the names do not collide: FNV-1a of the name, probing
    /// upwards in name order on a collision.
    static func assign(_ names: [String]) -> [String: UInt32] {
        var table = FirewallMarkTable()
        return table.assign(names)
    }

    /// FNV-1a.
    static func hash(_ name: String) -> UInt32 {
        var hash: UInt32 = 2_166_136_261
        for byte in name.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return hash
    }
}
