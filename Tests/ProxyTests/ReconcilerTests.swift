import IPVS
import IPVSText
import Testing
@testable import Proxy
#if canImport(Glibc)
import Glibc
#endif

@Suite struct ReconcilerTests {
    let t0 = ContinuousClock.now
    let vip = tcp("10.96.0.10", 80)

    let cluster = ClusterState(
        services: [service("web", type: .nodePort, ports: [Service.Port(port: 80, nodePort: 30080)])],
        endpointSlices: [slice("web-1", service: "web", endpoints: [endpoint("10.244.0.5"), endpoint("10.244.1.6")])])

    /// What a run loop does each time: compute, derive ownership, sync.
    func sync(_ reconciler: Reconciler, _ cluster: ClusterState, bound: Set<IPAddress> = [],
              at seconds: Int = 0) throws -> SyncSummary {
        let desired = DesiredState(cluster, node: nodeA)
        let ownership = Ownership(node: nodeA, desired: desired, boundAddresses: bound)
        return try reconciler.sync(desired, ownership: ownership, now: t0 + .seconds(seconds))
    }

    @Test func firstSyncFromEmptyThenNothing() throws {
        let fake = FakeIPVS()
        let reconciler = Reconciler(handle: fake)

        let first = try sync(reconciler, cluster)
        #expect(first.virtualServersAdded == 2)
        #expect(first.realServersAdded == 4)
        #expect(first.failures.isEmpty)
        #expect(first.changed)
        #expect(IPVSAdmFormat.commands(fake.applied) == """
            -A -t 10.96.0.10:80 -s rr
            -A -t 192.168.1.10:30080 -s rr
            -a -t 10.96.0.10:80 -r 10.244.0.5:8080 -m -w 1
            -a -t 10.96.0.10:80 -r 10.244.1.6:8080 -m -w 1
            -a -t 192.168.1.10:30080 -r 10.244.0.5:8080 -m -w 1
            -a -t 192.168.1.10:30080 -r 10.244.1.6:8080 -m -w 1
            """)

        let writes = fake.writeCount
        let second = try sync(reconciler, cluster, bound: [ip("10.96.0.10")], at: 10)
        #expect(second == SyncSummary())
        #expect(!second.changed)
        #expect(fake.writeCount == writes)
    }

    @Test func removedEndpointIsDrainedThenDeleted() throws {
        let fake = FakeIPVS()
        let reconciler = Reconciler(handle: fake, gracePeriod: .seconds(900))
        _ = try sync(reconciler, cluster)
        fake.setConnections(active: 2, inactive: 1, of: rkey("10.244.1.6", 8080), in: vip)

        var shrunk = cluster
        shrunk.endpointSlices = [slice("web-1", service: "web", endpoints: [endpoint("10.244.0.5")])]

        // The node-port copy has no connections: deleted at once; the cluster-IP one drains.
        let draining = try sync(reconciler, shrunk, at: 10)
        #expect(draining.realServersUpdated == 1)
        #expect(draining.realServersDeleted == 1)
        #expect(fake.realServers(of: vip).sorted { $0.server.key < $1.server.key }.map(\.server.weight) == [1, 0])
        #expect(fake.realServers(of: tcp("192.168.1.10", 30080)).map(\.server.key) == [rkey("10.244.0.5", 8080)])
        #expect(try sync(reconciler, shrunk, at: 20) == SyncSummary())
        #expect(fake.realServers(of: vip).count == 2)

        fake.setConnections(active: 0, inactive: 0, of: rkey("10.244.1.6", 8080), in: vip)
        let drained = try sync(reconciler, shrunk, at: 40)
        #expect(drained.realServersDeleted == 1)
        #expect(fake.realServers(of: vip).map(\.server.key) == [rkey("10.244.0.5", 8080)])
        #expect(reconciler.termination.drainingSince.isEmpty)
    }

    @Test func drainingGivesUpAfterTheGracePeriod() throws {
        let fake = FakeIPVS()
        let reconciler = Reconciler(handle: fake, gracePeriod: .seconds(60))
        _ = try sync(reconciler, cluster)
        fake.setConnections(active: 5, inactive: 0, of: rkey("10.244.1.6", 8080), in: vip)
        var shrunk = cluster
        shrunk.endpointSlices = [slice("web-1", service: "web", endpoints: [endpoint("10.244.0.5")])]

        _ = try sync(reconciler, shrunk, at: 100)
        _ = try sync(reconciler, shrunk, at: 159)
        #expect(fake.realServers(of: vip).count == 2)
        let late = try sync(reconciler, shrunk, at: 160)
        #expect(late.realServersDeleted == 1)
        #expect(fake.realServers(of: vip).count == 1)
    }

    @Test func foreignVirtualServersSurviveAndAreNotRead() throws {
        let fake = FakeIPVS()
        let foreign = tcp("172.16.0.1", 443)
        try fake.applyAll([.addVirtualServer(VirtualServer(key: foreign, scheduler: "wlc")),
                           .addRealServer(foreign, real("172.16.1.1", 443))])
        let reconciler = Reconciler(handle: fake)
        _ = try sync(reconciler, cluster)
        _ = try sync(reconciler, ClusterState(), bound: [ip("10.96.0.10")])
        let reads = fake.realServerReads

        #expect(!reads.contains(foreign))
        #expect(fake.virtualServers().map(\.server.key) == [foreign])
        #expect(fake.realServers(of: foreign).count == 1)
    }

    @Test func deletedServiceIsRemovedThroughItsBoundAddress() throws {
        let fake = FakeIPVS()
        let reconciler = Reconciler(handle: fake)
        _ = try sync(reconciler, cluster)

        let summary = try sync(reconciler, ClusterState(), bound: [ip("10.96.0.10")])
        #expect(summary.virtualServersDeleted == 2)  // the cluster IP, and the node port by its range
        #expect(summary.realServersDeleted == 0)
        #expect(fake.virtualServers().isEmpty)
    }

    @Test func refusedOperationsAreReportedAndRetried() throws {
        let fake = FakeIPVS()
        fake.failure = { if case .addRealServer(_, let real) = $0, real.key.port == 8080 { .notPermitted } else { nil } }
        let reconciler = Reconciler(handle: fake)
        let first = try sync(reconciler, cluster)
        #expect(first.virtualServersAdded == 2)
        #expect(first.failures.count == 4)
        #expect(first.failures.first?.description
                == "-a -t 10.96.0.10:80 -r 10.244.0.5:8080 -m -w 1: add real server 10.244.0.5:8080 to TCP 10.96.0.10:80: permission denied, CAP_NET_ADMIN is needed (EPERM)")

        fake.failure = nil
        let second = try sync(reconciler, cluster, bound: [ip("10.96.0.10")], at: 1)
        #expect(second.realServersAdded == 4)
        #expect(second.failures.isEmpty)
    }

    @Test func failedDrainIsNotRemembered() throws {
        let fake = FakeIPVS()
        let reconciler = Reconciler(handle: fake)
        _ = try sync(reconciler, cluster)
        fake.setConnections(active: 1, inactive: 0, of: rkey("10.244.1.6", 8080), in: vip)
        fake.setConnections(active: 1, inactive: 0, of: rkey("10.244.1.6", 8080), in: tcp("192.168.1.10", 30080))
        var shrunk = cluster
        shrunk.endpointSlices = [slice("web-1", service: "web", endpoints: [endpoint("10.244.0.5")])]

        fake.failure = { if case .updateRealServer(let key, _) = $0, key == vip { .notPermitted } else { nil } }
        let summary = try sync(reconciler, shrunk, at: 5)
        #expect(summary.failures.count == 1)
        #expect(reconciler.termination.drainingSince.keys.map(\.virtualServer) == [tcp("192.168.1.10", 30080)])
    }

    @Test func planReadsWithoutWriting() throws {
        let fake = FakeIPVS()
        let reconciler = Reconciler(handle: fake)
        let desired = DesiredState(cluster, node: nodeA)
        let plan = try reconciler.plan(desired, ownership: Ownership(node: nodeA, desired: desired, boundAddresses: []),
                                       now: t0)
        #expect(plan.operations.count == 6)
        #expect(fake.writeCount == 0)
    }

    @Test func badInputNeverReachesTheReconciler() throws {
        let fake = FakeIPVS()
        let reconciler = Reconciler(handle: fake)
        var lastGood = try ManifestLoader.parse("""
            apiVersion: v1
            kind: Service
            metadata: {name: web}
            spec: {clusterIP: 10.96.0.10, ports: [{port: 80}]}
            """, source: "web.yaml")
        _ = try sync(reconciler, lastGood)
        let writes = fake.writeCount

        // A run loop keeps its last good state when a load fails.
        let edited = """
            apiVersion: v1
            kind: Service
            metadata: {name: web}
            spec: {clusterIP: 10.96.0.10, ports: [{port: 80000}]}
            """
        if let state = try? ManifestLoader.parse(edited, source: "web.yaml") { lastGood = state }
        #expect(try sync(reconciler, lastGood, bound: [ip("10.96.0.10")], at: 1) == SyncSummary())
        #expect(fake.writeCount == writes)
        #expect(fake.virtualServers().map(\.server.key) == [vip])
    }
}

/// Syncs between periodic resyncs plan against the table the last sync left.
@Suite struct KnownTableTests {
    let t0 = ContinuousClock.now
    let vip = tcp("10.96.0.10", 80)
    let cluster = ClusterState(
        services: [service("web", ports: [Service.Port(port: 80)])],
        endpointSlices: [slice("web-1", service: "web", endpoints: [endpoint("10.244.0.5")])])

    func sync(_ reconciler: Reconciler, _ cluster: ClusterState, readKernel: Bool, at seconds: Int = 0) throws -> SyncSummary {
        let desired = DesiredState(cluster, node: nodeA)
        return try reconciler.sync(desired, ownership: Ownership(node: nodeA, desired: desired, boundAddresses: []),
                                   now: t0 + .seconds(seconds), readKernel: readKernel)
    }

    @Test func changesBetweenResyncsReadNothingFromTheKernel() throws {
        let fake = FakeIPVS()
        let reconciler = Reconciler(handle: fake)
        _ = try sync(reconciler, cluster, readKernel: true)
        let reads = fake.realServerReads.count

        var grown = cluster
        grown.endpointSlices = [slice("web-1", service: "web", endpoints: [endpoint("10.244.0.5"), endpoint("10.244.0.6")])]
        let summary = try sync(reconciler, grown, readKernel: false, at: 1)
        #expect(summary.realServersAdded == 1)
        #expect(fake.realServerReads.count == reads)
        #expect(fake.realServers(of: vip).map(\.server.key.address).sorted() == [ip("10.244.0.5"), ip("10.244.0.6")])
        #expect(try sync(reconciler, grown, readKernel: false, at: 2) == SyncSummary())
    }

    @Test func onlyTheResyncRepairsChangesBehindItsBack() throws {
        let fake = FakeIPVS()
        let reconciler = Reconciler(handle: fake)
        _ = try sync(reconciler, cluster, readKernel: true)
        try fake.applyAll([.deleteRealServer(vip, rkey("10.244.0.5", 8080))])

        #expect(try sync(reconciler, cluster, readKernel: false, at: 1) == SyncSummary())
        #expect(try sync(reconciler, cluster, readKernel: true, at: 30).realServersAdded == 1)
        #expect(fake.realServers(of: vip).count == 1)
    }

    @Test func aRealServerAddedSinceTheLastReadIsReadBeforeItIsJudgedIdle() throws {
        let fake = FakeIPVS()
        let reconciler = Reconciler(handle: fake)
        _ = try sync(reconciler, cluster, readKernel: true)
        var grown = cluster
        grown.endpointSlices = [slice("web-1", service: "web", endpoints: [endpoint("10.244.0.5"), endpoint("10.244.0.6")])]
        _ = try sync(reconciler, grown, readKernel: false, at: 1)
        // Traffic reaches the new real server; the known table still says it has none.
        fake.setConnections(active: 1, inactive: 2, of: rkey("10.244.0.6", 8080), in: vip)
        let reads = fake.realServerReads.count

        let summary = try sync(reconciler, cluster, readKernel: false, at: 2)
        #expect(fake.realServerReads.dropFirst(reads) == [vip])
        #expect(summary.realServersUpdated == 1)
        #expect(summary.realServersDeleted == 0)
        #expect(fake.realServers(of: vip).sorted { $0.server.key < $1.server.key }.map(\.server.weight) == [1, 0])
    }

    @Test func anIdleRealServerLeavingBetweenResyncsIsDeletedInTheSameSync() throws {
        let fake = FakeIPVS()
        let reconciler = Reconciler(handle: fake)
        var grown = cluster
        grown.endpointSlices = [slice("web-1", service: "web", endpoints: [endpoint("10.244.0.5"), endpoint("10.244.0.6")])]
        _ = try sync(reconciler, grown, readKernel: true)
        let reads = fake.realServerReads.count

        let summary = try sync(reconciler, cluster, readKernel: false, at: 1)
        #expect(summary.realServersDeleted == 1)
        #expect(fake.realServerReads.dropFirst(reads) == [vip])
        #expect(fake.realServers(of: vip).map(\.server.key) == [rkey("10.244.0.5", 8080)])
    }

    @Test func onlyVirtualServersThatLoseTCPRealServersAreRead() {
        let dns = udp("10.96.0.53", 53)
        let gone = tcp("10.96.0.99", 80)
        let other = tcp("10.96.0.20", 80)
        func entry(_ key: VirtualServerKey, _ reals: [RealServer]) -> (VirtualServerKey, (VirtualServerStatus, [RealServerStatus])) {
            (key, (VirtualServerStatus(server: VirtualServer(key: key, scheduler: "rr")), reals.map { RealServerStatus(server: $0) }))
        }
        let table = Dictionary(uniqueKeysWithValues: [
            entry(vip, [real("10.244.0.5", 8080), real("10.244.0.6", 8080)]),
            entry(dns, [real("10.244.0.9", 53)]),
            entry(gone, [real("10.244.0.7", 80)]),
            entry(other, [real("10.244.0.8", 80)]),
        ])
        let name = ServicePortName(namespace: "default", name: "web", port: "", protocol: .tcp)
        let desired = DesiredState(virtualServers: [
            vip: DesiredVirtualServer(server: VirtualServer(key: vip, scheduler: "rr"), realServers: [real("10.244.0.5", 8080)], service: name),
            dns: DesiredVirtualServer(server: VirtualServer(key: dns, scheduler: "rr"), service: name),
            other: DesiredVirtualServer(server: VirtualServer(key: other, scheduler: "rr"),
                                        realServers: [real("10.244.0.8", 80), real("10.244.0.1", 80)], service: name),
        ])
        #expect(Reconciler.needingCounts(table, keys: Set(table.keys), desired: desired, draining: GracefulTermination()) == [vip])
    }

    @Test func aRefusedOperationMakesTheNextSyncReadTheKernel() throws {
        let fake = FakeIPVS()
        let reconciler = Reconciler(handle: fake)
        _ = try sync(reconciler, cluster, readKernel: true)
        var grown = cluster
        grown.endpointSlices = [slice("web-1", service: "web", endpoints: [endpoint("10.244.0.5"), endpoint("10.244.0.7")])]
        fake.failure = { _ in .noMemory }  // once
        #expect(try sync(reconciler, grown, readKernel: false, at: 1).failures.count == 1)
        fake.failure = nil
        let reads = fake.realServerReads.count
        #expect(try sync(reconciler, grown, readKernel: false, at: 2).realServersAdded == 1)
        #expect(fake.realServerReads.count > reads)
    }
}
