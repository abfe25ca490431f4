import IPVS

/// What one sync did, for logs and metrics.
public struct SyncReport: Sendable {
    public var ipvs = SyncSummary()
    public var addressesBound = 0
    public var addressesUnbound = 0
    public var warnings: [DesiredState.Warning] = []

    public var changed: Bool { ipvs.changed || addressesBound > 0 || addressesUnbound > 0 }
}

/// One node's service proxy: cluster objects in, kernel state out.
public final class Agent {
    public let ipvs: any IPVSHandle
    public let network: any NodeNetwork
    public let reconciler: Reconciler
    public var node: NodeConfig
    /// `--nodeport-addresses`; empty means every node address.
    public var nodePortCIDRs: [CIDR]

    public init(ipvs: any IPVSHandle, network: any NodeNetwork, node: NodeConfig, nodePortCIDRs: [CIDR] = [],
                gracePeriod: Duration = GracefulTermination.defaultGracePeriod) {
        self.ipvs = ipvs
        self.network = network
        self.node = node
        self.nodePortCIDRs = nodePortCIDRs
        self.reconciler = Reconciler(handle: ipvs, gracePeriod: gracePeriod)
    }

    /// Records the node's own addresses (NodePorts listen on those `--nodeport-addresses` selects)
    /// and returns them: VIPs among them need no binding.
    func useNodeAddresses(_ addresses: NodeAddresses) -> Set<IPAddress> {
        node.nodePortAddresses = addresses.node
            .filter { address in nodePortCIDRs.isEmpty || nodePortCIDRs.contains { $0.contains(address) } }
            .sorted()
        return Set(addresses.node)
    }

    /// Brings IPVS and the dummy interface to what `cluster` asks for. With `readKernel` false the
    /// IPVS plan starts from what the last sync left (see `Reconciler.sync`).
    public func sync(_ cluster: ClusterState, now: ContinuousClock.Instant = .now, readKernel: Bool = true) throws -> SyncReport {
        let addresses = try network.addresses(dummyInterface: node.dummyInterface, create: true)
        let local = useNodeAddresses(addresses)
        let desired = DesiredState(cluster, node: node)
        var report = SyncReport(warnings: desired.warnings)
        // Virtual servers go first, addresses after: a VIP is unbound only once nothing serves it.
        report.ipvs = try reconciler.sync(desired, ownership: Ownership(node: node, desired: desired, boundAddresses: addresses.bound),
                                          now: now, readKernel: readKernel)
        (report.addressesBound, report.addressesUnbound) = try network.bind(desired.addresses.subtracting(local),
                                                                            current: addresses)
        return report
    }

    /// What a sync would do, without doing it: IPVS operations and address changes.
    public func plan(_ cluster: ClusterState, now: ContinuousClock.Instant = .now) throws
        -> (plan: Plan, bind: [IPAddress], unbind: [IPAddress], warnings: [DesiredState.Warning]) {
        let addresses = try network.addresses(dummyInterface: node.dummyInterface, create: false)
        let local = useNodeAddresses(addresses)
        let desired = DesiredState(cluster, node: node)
        let plan = try reconciler.plan(desired, ownership: Ownership(node: node, desired: desired, boundAddresses: addresses.bound),
                                       now: now)
        let wanted = desired.addresses.subtracting(local)
        return (plan, wanted.subtracting(addresses.bound).sorted(), addresses.bound.subtracting(wanted).sorted(), desired.warnings)
    }

    /// Removes every virtual server kipvs owns and its dummy interface; nothing else.
    public func cleanup() throws -> SyncSummary {
        let addresses = try network.addresses(dummyInterface: node.dummyInterface, create: false)
        _ = useNodeAddresses(addresses)
        let empty = DesiredState(ClusterState(), node: node)
        let ownership = Ownership(node: node, desired: empty, boundAddresses: addresses.bound)
        let owned = try ipvs.virtualServers().map(\.server.key).filter(ownership.owns)
        var summary = SyncSummary()
        let failures = try ipvs.apply(owned.map { .deleteVirtualServer($0) })
        summary.virtualServersDeleted = owned.count - failures.count
        summary.failures = failures.keys.sorted().map { .init(operation: .deleteVirtualServer(owned[$0]), error: failures[$0]!) }
        try network.removeInterface(named: node.dummyInterface)
        return summary
    }
}
