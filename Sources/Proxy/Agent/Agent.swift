import HostNetwork
import IPVS
import NFTables

/// What one sync did, for logs and metrics.
public struct SyncReport: Sendable {
    public var ipvs = SyncSummary()
    public var packetFilter = PacketFilterSummary()
    public var addressesBound = 0
    public var addressesUnbound = 0
    /// UDP flows whose endpoint went away, deleted so that their next datagram is scheduled anew.
    public var conntrackEntriesDeleted = 0
    /// Why stale UDP flows could not be deleted; retried on the next sync.
    public var conntrackFailure: (any Error)?
    /// Set on the sync that found the kernel cannot hold the packet filter table, which is then off.
    public var packetFilterUnavailable: NFTablesError?
    public var warnings: [DesiredState.Warning] = []

    public var changed: Bool { ipvs.changed || packetFilter.changed || addressesBound > 0 || addressesUnbound > 0 }
}

/// One node's service proxy: cluster objects in, kernel state out.
public final class Agent {
    public let ipvs: any IPVSHandle
    public let network: any NodeNetwork
    public let reconciler: Reconciler
    /// nil when the packet path is not programmed (a kernel without nf_tables for IP).
    public private(set) var packetFilter: PacketFilterReconciler?
    /// nil when stale UDP flows are left to expire.
    public let conntrack: (any ConntrackHandle)?
    /// What the last sync whose conntrack cleanup succeeded asked for: the next cleanup's baseline.
    private var lastCleaned = DesiredState()
    public var node: NodeConfig
    /// `--nodeport-addresses`; empty means every node address.
    public var nodePortCIDRs: [CIDR]

    public init(ipvs: any IPVSHandle, network: any NodeNetwork, node: NodeConfig, nodePortCIDRs: [CIDR] = [],
                packetFilter: PacketFilterReconciler? = nil, conntrack: (any ConntrackHandle)? = nil,
                gracePeriod: Duration = GracefulTermination.defaultGracePeriod) {
        self.ipvs = ipvs
        self.network = network
        self.packetFilter = packetFilter
        self.conntrack = conntrack
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
        let vips = desired.addresses.subtracting(local)
        var report = SyncReport(warnings: desired.warnings)
        // The packet path first, so that a new virtual IP's ports pass the VIP filter once it is
        // bound; a failure there does not hold IPVS back, and is reported after it.
        var packetFilterError: (any Error)?
        if let packetFilter {
            do {
                report.packetFilter = try packetFilter.sync(PacketFilterElements(desired, vips: vips), readKernel: readKernel)
            } catch let error as NFTablesError where error.meansNoPacketFilter {
                // IPVS works without it: the sync goes on, and the table is not tried again.
                self.packetFilter = nil
                report.packetFilterUnavailable = error
            } catch {
                packetFilterError = error
            }
        }
        // Virtual servers go first, addresses after: a VIP is unbound only once nothing serves it.
        report.ipvs = try reconciler.sync(desired, ownership: Ownership(node: node, desired: desired, boundAddresses: addresses.bound),
                                          now: now, readKernel: readKernel)
        (report.addressesBound, report.addressesUnbound) = try network.bind(vips, current: addresses)
        cleanStaleFlows(desired, into: &report)
        if let packetFilterError { throw packetFilterError }
        return report
    }

    /// As kube-proxy: UDP flows to a Service address whose reply source is no longer one of its
    /// endpoints would keep going nowhere until they expire. A failure is reported, not thrown, and
    /// the same change is looked at again next time.
    private func cleanStaleFlows(_ desired: DesiredState, into report: inout SyncReport) {
        guard let conntrack else { return }
        let filters = ConntrackCleanup.filters(from: lastCleaned, to: desired)
        do {
            if !filters.isEmpty { report.conntrackEntriesDeleted = try conntrack.deleteEntries(matching: filters) }
            lastCleaned = desired
        } catch {
            report.conntrackFailure = error
        }
    }


    /// What a sync would do, without doing it: IPVS operations and address changes.
    public func plan(_ cluster: ClusterState, now: ContinuousClock.Instant = .now) throws -> AgentPlan {
        let addresses = try network.addresses(dummyInterface: node.dummyInterface, create: false)
        let local = useNodeAddresses(addresses)
        let desired = DesiredState(cluster, node: node)
        let plan = try reconciler.plan(desired, ownership: Ownership(node: node, desired: desired, boundAddresses: addresses.bound),
                                       now: now)
        let wanted = desired.addresses.subtracting(local)
        var packetFilterPlan = try packetFilter?.plan(PacketFilterElements(desired, vips: wanted))
        // No table to read may mean a kernel that cannot hold one: then there is nothing to plan.
        if packetFilterPlan?.rebuild == true, try packetFilter?.kernelCanHoldTable() == false { packetFilterPlan = nil }
        return AgentPlan(ipvs: plan, packetFilter: packetFilterPlan, bind: wanted.subtracting(addresses.bound).sorted(),
                         unbind: addresses.bound.subtracting(wanted).sorted(), warnings: desired.warnings)
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
        try packetFilter?.remove()
        try network.removeInterface(named: node.dummyInterface)
        return summary
    }
}

/// What a sync would do (`kipvs plan`).
public struct AgentPlan: Sendable {
    public var ipvs: Plan
    /// nil when the packet path is not programmed.
    public var packetFilter: PacketFilterPlan?
    public var bind: [IPAddress]
    public var unbind: [IPAddress]
    public var warnings: [DesiredState.Warning]
}
