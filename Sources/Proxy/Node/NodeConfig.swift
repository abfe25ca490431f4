import IPVS

/// What the desired state depends on besides the cluster's objects: facts about this node and
/// the agent's flags.
public struct NodeConfig: Hashable, Sendable {
    /// Matched against `endpoints[].nodeName` for the Local traffic policies.
    public var nodeName: String
    /// The node's own addresses that NodePorts listen on, already resolved from
    /// `--nodeport-addresses` (or every local address when that flag is unset).
    public var nodePortAddresses: [IPAddress]
    /// `--ipvs-scheduler`.
    public var scheduler: IPVSScheduler
    /// The API server's `--service-node-port-range`; virtual servers on a node address with a port
    /// in this range are kipvs's to delete.
    public var nodePortRange: ClosedRange<UInt16>
    /// `--ipvs-exclude-cidrs`: virtual servers on these addresses are never deleted.
    public var excludeCIDRs: [CIDR]
    /// The dummy interface that holds the virtual IPs.
    public var dummyInterface: String
    /// The node's `topology.kubernetes.io/zone`, matched against endpoints' zone hints; nil when
    /// unknown. Taken from the Node object when the source has it (see `observing(_:)`).
    public var zone: String?

    public static let defaultNodePortRange: ClosedRange<UInt16> = 30000...32767

    public init(nodeName: String, nodePortAddresses: [IPAddress] = [], scheduler: IPVSScheduler = .roundRobin,
                nodePortRange: ClosedRange<UInt16> = NodeConfig.defaultNodePortRange, excludeCIDRs: [CIDR] = [],
                dummyInterface: String = "kipvs0", zone: String? = nil) {
        self.nodeName = nodeName
        self.nodePortAddresses = nodePortAddresses
        self.scheduler = scheduler
        self.nodePortRange = nodePortRange
        self.excludeCIDRs = excludeCIDRs
        self.dummyInterface = dummyInterface
        self.zone = zone
    }

    /// This configuration with what the cluster's Node object of this node says: its zone.
    /// Without that object the configuration stays as it is.
    public func observing(_ cluster: ClusterState) -> NodeConfig {
        observing(cluster.node(named: nodeName))
    }

    public func observing(_ objects: ClusterObjects) -> NodeConfig {
        observing(objects.node(named: nodeName))
    }

    private func observing(_ node: ClusterNode?) -> NodeConfig {
        guard let node else { return self }
        var config = self
        config.zone = node.zone
        return config
    }

    /// Parses `30000-32767` (the API server's notation) or a single port.
    public static func parsePortRange(_ text: String) -> ClosedRange<UInt16>? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false).map { UInt16($0) }
        switch parts.count {
        case 1: guard let port = parts[0], port > 0 else { return nil }; return port...port
        case 2: guard let low = parts[0], let high = parts[1], low > 0, low <= high else { return nil }; return low...high
        default: return nil
        }
    }

    /// What is wrong with the configuration, if anything; empty when it is usable.
    public var problems: [String] {
        var out: [String] = []
        if nodeName.isEmpty { out.append("node name is empty") }
        // IFNAMSIZ is 16 with the terminating NUL; the kernel also refuses "/", ":" and spaces.
        if dummyInterface.isEmpty || dummyInterface.utf8.count > 15 || dummyInterface == "." || dummyInterface == ".."
            || dummyInterface.contains(where: { $0 == "/" || $0 == ":" || $0.isWhitespace }) {
            out.append("interface name \"\(dummyInterface)\" is not valid (1-15 characters, no '/', ':' or spaces)")
        }
        return out
    }
}
