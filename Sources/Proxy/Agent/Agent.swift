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

    /// The node's addresses now: NodePorts listen on them, and VIPs among them need no binding.
    func refreshNodeAddresses() throws -> Set<IPAddress> {
        let local = try network.nodeAddresses(excludingInterface: node.dummyInterface)
        node.nodePortAddresses = local
            .filter { address in nodePortCIDRs.isEmpty || nodePortCIDRs.contains { $0.contains(address) } }
            .sorted()
        return Set(local)
    }

    /// Brings IPVS and the dummy interface to what `cluster` asks for.
    public func sync(_ cluster: ClusterState, now: ContinuousClock.Instant = .now) throws -> SyncReport {
        let local = try refreshNodeAddresses()
        let bound = try network.prepareDummyInterface(named: node.dummyInterface)
        let desired = DesiredState(cluster, node: node)
        var report = SyncReport(warnings: desired.warnings)
        // Virtual servers go first, addresses after: a VIP is unbound only once nothing serves it.
        report.ipvs = try reconciler.sync(desired, ownership: Ownership(node: node, desired: desired, boundAddresses: bound),
                                          now: now)
        (report.addressesBound, report.addressesUnbound) = try network.bind(desired.addresses.subtracting(local),
                                                                            toInterface: node.dummyInterface)
        return report
    }

    /// What a sync would do, without doing it: IPVS operations and address changes.
    public func plan(_ cluster: ClusterState, now: ContinuousClock.Instant = .now) throws
        -> (plan: Plan, bind: [IPAddress], unbind: [IPAddress], warnings: [DesiredState.Warning]) {
        let local = try refreshNodeAddresses()
        let bound = try network.addresses(onInterface: node.dummyInterface)
        let desired = DesiredState(cluster, node: node)
        let plan = try reconciler.plan(desired, ownership: Ownership(node: node, desired: desired, boundAddresses: bound), now: now)
        let wanted = desired.addresses.subtracting(local)
        return (plan, wanted.subtracting(bound).sorted(), bound.subtracting(wanted).sorted(), desired.warnings)
    }

    /// Removes every virtual server kipvs owns and its dummy interface; nothing else.
    public func cleanup() throws -> SyncSummary {
        _ = try refreshNodeAddresses()
        let bound = try network.addresses(onInterface: node.dummyInterface)
        let empty = DesiredState(ClusterState(), node: node)
        let ownership = Ownership(node: node, desired: empty, boundAddresses: bound)
        let owned = try ipvs.virtualServers().map(\.server.key).filter(ownership.owns)
        var summary = SyncSummary()
        let failures = try ipvs.apply(owned.map { .deleteVirtualServer($0) })
        summary.virtualServersDeleted = owned.count - failures.count
        summary.failures = failures.keys.sorted().map { .init(operation: .deleteVirtualServer(owned[$0]), error: failures[$0]!) }
        try network.removeInterface(named: node.dummyInterface)
        return summary
    }
}
