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

/// One node's service proxy: cluster objects in, kernel state out. Changes are taken in as they
/// come (`take`); a sync then computes only the Services they touched and changes only what those
/// changed, against the kernel state the last sync left. A resync reads the kernel back and
/// repairs whatever was changed behind kipvs' back.
public final class Agent {
    public let ipvs: any IPVSHandle
    public let network: any NodeNetwork
    public let reconciler: Reconciler
    /// nil when the packet path is not programmed (a kernel without nf_tables for IP).
    public private(set) var packetFilter: PacketFilterReconciler?
    /// nil when stale UDP flows are left to expire.
    public let conntrack: (any ConntrackHandle)?
    public var node: NodeConfig
    /// `--nodeport-addresses`; empty means every node address.
    public var nodePortCIDRs: [CIDR]

    /// Every object the sources reported.
    public private(set) var objects = ClusterObjects()
    /// The desired state by Service; nil until the first sync, and when every Service must be computed again.
    private var index: DesiredStateIndex?
    private var marks = FirewallMarkTable()
    /// Services changed since the last sync.
    private var dirty: Set<ObjectName> = []
    /// The dummy interface and the virtual IPs it held after the last sync; nil forces a look.
    private var bound: (index: Int32, addresses: Set<IPAddress>)?
    /// The node's own addresses at the last look: virtual IPs among them are not bound.
    private var local: Set<IPAddress> = []
    /// UDP virtual servers whose stale flows are still to be deleted, with their real servers
    /// before the change (nil: the virtual server did not exist).
    private var flowsToClean: [VirtualServerKey: DesiredVirtualServer?] = [:]

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

    /// Takes a source's changes in, for the next sync.
    @discardableResult
    public func take(_ changes: ClusterChanges) -> ClusterObjects.Touched {
        let touched = objects.apply(changes)
        dirty.formUnion(touched.services)
        return touched
    }

    /// Whether changes wait for a sync.
    public var hasChanges: Bool { !dirty.isEmpty || index == nil }

    /// Virtual servers with real servers being drained, which a sync looks at again.
    public var isDraining: Bool { !reconciler.termination.drainingSince.isEmpty }

    /// Makes the agent's objects those of `cluster`, then syncs; `readKernel` as `resync`.
    public func sync(_ cluster: ClusterState, now: ContinuousClock.Instant = .now, readKernel: Bool = true) throws -> SyncReport {
        take(ClusterChanges.between(objects.state, cluster))
        return try sync(now: now, resync: readKernel)
    }

    /// Brings IPVS, the packet filter and the dummy interface to what the objects ask for. A
    /// resync reads all of them from the kernel; otherwise only what changed is planned, against
    /// what the last sync left.
    public func sync(now: ContinuousClock.Instant = .now, resync: Bool) throws -> SyncReport {
        var addresses: NodeAddresses?
        if resync || bound == nil {
            addresses = try network.addresses(dummyInterface: node.dummyInterface, create: true)
            local = useNodeAddresses(addresses!)
        }
        let (delta, rebuilt) = updateIndex()
        noteStaleFlows(delta)
        let desired = index!.state
        var report = SyncReport(warnings: rebuilt || resync ? index!.warnings
                                    : delta.services.sorted().flatMap { index!.part(of: $0)?.warnings ?? [] })
        do {
            if addresses == nil, !rebuilt, try syncChanges(delta, desired: desired, now: now, into: &report) {
                // done
            } else {
                if addresses == nil {
                    addresses = try network.addresses(dummyInterface: node.dummyInterface, create: true)
                    local = useNodeAddresses(addresses!)
                }
                try syncAll(desired, addresses: addresses!, now: now, readKernel: resync, into: &report)
            }
        } catch {
            bound = nil
            throw error
        }
        cleanStaleFlows(desired, into: &report)
        return report
    }

    /// Computes the Services changed since the last sync, or all of them when the node changed
    /// or a contested virtual server is involved.
    private func updateIndex() -> (delta: DesiredStateDelta, rebuilt: Bool) {
        let node = node.observing(objects)
        defer { dirty = [] }
        let old: DesiredState
        // Taken out while it changes, so that its tables are changed in place, not copied.
        if var index, index.node == node {
            self.index = nil
            var delta = DesiredStateDelta()
            var complete = true
            for service in dirty.sorted() where !index.update(service, objects, into: &delta) {
                complete = false
                break
            }
            marks = index.marks
            if complete {
                self.index = index
                return (delta, false)
            }
            // The Services updated so far are in `index`: what follows starts from there.
            noteStaleFlows(delta)
            old = index.state
        } else {
            old = index?.state ?? DesiredState()
        }
        let rebuilt = DesiredStateIndex(objects, node: node, marks: marks)
        index = rebuilt
        marks = rebuilt.marks
        var delta = DesiredStateDelta.between(old, rebuilt.state)
        delta.services = Set(objects.services.keys)
        return (delta, true)
    }

    /// Notes the UDP virtual servers a change touched, before the kernel is: a failed sync must not lose them.
    private func noteStaleFlows(_ delta: DesiredStateDelta) {
        guard conntrack != nil else { return }
        for key in delta.virtualServerKeys where flowsToClean.index(forKey: key) == nil {
            guard case .service(.udp, _, _) = key else { continue }
            flowsToClean[key] = .some(delta.removed.virtualServers[key])
        }
    }

    /// The changes alone, against what the last sync left; false when that is not known (nothing written then).
    private func syncChanges(_ delta: DesiredStateDelta, desired: DesiredState, now: ContinuousClock.Instant,
                             into report: inout SyncReport) throws -> Bool {
        guard let bound else { return false }
        let removedVIPs = delta.removed.addresses.subtracting(delta.added.addresses).subtracting(local)
        let addedVIPs = delta.added.addresses.subtracting(delta.removed.addresses).subtracting(local)
        var packetFilterError: (any Error)?
        if let packetFilter {
            do {
                let removing = PacketFilterElements(delta.removed, vips: removedVIPs).sets
                let adding = PacketFilterElements(delta.added, vips: addedVIPs).sets
                if let summary = try packetFilter.sync(removing: removing, adding: adding) {
                    report.packetFilter = summary
                } else {
                    let vips = desired.addresses.subtracting(local)
                    report.packetFilter = try packetFilter.sync(PacketFilterElements(desired, vips: vips), readKernel: false)
                }
            } catch {
                packetFilterError = error
            }
        }
        // What goes was kipvs' own; exclusions still apply.
        let ownership = Ownership(addresses: Set(delta.removed.virtualServers.keys.compactMap(\.address)),
                                  nodePortAddresses: Set(node.nodePortAddresses), nodePortRange: node.nodePortRange,
                                  excludeCIDRs: node.excludeCIDRs)
        guard let summary = try reconciler.sync(keys: delta.virtualServerKeys, desired: desired, ownership: ownership, now: now)
        else { return false }
        report.ipvs = summary
        if !removedVIPs.isEmpty || !addedVIPs.isEmpty {
            (report.addressesBound, report.addressesUnbound) = try network.changeAddresses(
                onInterface: bound.index, bound: bound.addresses, adding: addedVIPs, removing: removedVIPs)
            self.bound = (bound.index, bound.addresses.subtracting(removedVIPs).union(addedVIPs))
        }
        if let packetFilterError { throw packetFilterError }
        return true
    }

    /// Everything, as a resync does (with `readKernel`) or after a change that touched all Services.
    private func syncAll(_ desired: DesiredState, addresses: NodeAddresses, now: ContinuousClock.Instant, readKernel: Bool,
                         into report: inout SyncReport) throws {
        let vips = desired.addresses.subtracting(local)
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
        if let index = addresses.dummyInterfaceIndex { bound = (index, vips) }
        if let packetFilterError { throw packetFilterError }
    }

    /// As kube-proxy: UDP flows to a Service address whose reply source is no longer one of its
    /// endpoints would keep going nowhere until they expire. A failure is reported, not thrown, and
    /// the same virtual servers are looked at again next time.
    private func cleanStaleFlows(_ desired: DesiredState, into report: inout SyncReport) {
        guard let conntrack, !flowsToClean.isEmpty else { return }
        var before = DesiredState()
        var after = DesiredState()
        for (key, server) in flowsToClean {
            before.virtualServers[key] = server
            after.virtualServers[key] = desired.virtualServers[key]
        }
        let filters = ConntrackCleanup.filters(from: before, to: after)
        do {
            if !filters.isEmpty { report.conntrackEntriesDeleted = try conntrack.deleteEntries(matching: filters) }
            flowsToClean = [:]
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
