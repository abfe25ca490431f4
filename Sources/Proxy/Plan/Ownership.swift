import IPVS

/// Which virtual servers kipvs may delete when it no longer wants them. Everything else in the
/// kernel's table belongs to someone else and is never touched.
public struct Ownership: Hashable, Sendable {
    /// Virtual IPs kipvs manages now, or still has bound on its dummy interface.
    public var addresses: Set<IPAddress>
    public var nodePortAddresses: Set<IPAddress>
    public var nodePortRange: ClosedRange<UInt16>
    /// `--ipvs-exclude-cidrs`: wins over everything above.
    public var excludeCIDRs: [CIDR]

    public init(addresses: Set<IPAddress>, nodePortAddresses: Set<IPAddress> = [],
                nodePortRange: ClosedRange<UInt16> = NodeConfig.defaultNodePortRange, excludeCIDRs: [CIDR] = []) {
        self.addresses = addresses
        self.nodePortAddresses = nodePortAddresses
        self.nodePortRange = nodePortRange
        self.excludeCIDRs = excludeCIDRs
    }

    /// `boundAddresses`: what the dummy interface holds now, which includes virtual IPs of
    /// Services deleted since the last sync.
    public init(node: NodeConfig, desired: DesiredState, boundAddresses: Set<IPAddress>) {
        self.init(addresses: desired.addresses.union(boundAddresses),
                  nodePortAddresses: Set(node.nodePortAddresses),
                  nodePortRange: node.nodePortRange,
                  excludeCIDRs: node.excludeCIDRs)
    }

    public func owns(_ key: VirtualServerKey) -> Bool {
        guard case .service(_, let address, let port) = key else {
            if case .firewallMark(_, let mark) = key { return InClusterFirewallMarks.range.contains(mark) }
            return false
        }
        if excludeCIDRs.contains(where: { $0.contains(address) }) { return false }
        return addresses.contains(address) || (nodePortAddresses.contains(address) && nodePortRange.contains(port))
    }
}
