import Foundation
import HostNetwork
import IPVS
import Logging
import NFTables
import Testing
@testable import Proxy

/// Counts what the agent asks of IPVS: a change must not read the whole table.
private final class CountingIPVS: IPVSHandle {
    let base = FakeIPVS()
    var tableReads = 0
    var realServerReads = 0
    var operations: [IPVSOperation] = []

    func virtualServers() throws -> [VirtualServerStatus] {
        tableReads += 1
        return base.virtualServers()
    }

    func realServers(of key: VirtualServerKey) throws -> [RealServerStatus] {
        realServerReads += 1
        return base.realServers(of: key)
    }

    func apply(_ operations: [IPVSOperation]) throws -> [Int: IPVSError] {
        self.operations += operations
        return base.apply(operations)
    }

    func flush() throws { base.flush() }
    func timeouts() throws -> Timeouts { base.timeouts() }
    func setTimeouts(_ timeouts: Timeouts) throws { base.setTimeouts(timeouts) }
    func info() throws -> IPVSInfo { try base.info() }
}

/// Counts table reads of nf_tables.
private final class CountingNFTables: NFTablesHandle {
    let base = FakeNFTables()
    var reads = 0
    var commits: [[NFTOperation]] = []

    func table(_ name: TableName) throws -> TableSnapshot? {
        reads += 1
        return try base.table(name)
    }

    func commit(_ operations: [NFTOperation]) throws {
        commits.append(operations)
        try base.commit(operations)
    }
}

/// A dummy interface in memory that counts full looks.
private final class CountingNetwork: NodeNetwork {
    var bound: Set<IPAddress> = []
    var looks = 0

    func addresses(dummyInterface name: String, create: Bool) throws -> NodeAddresses {
        looks += 1
        return NodeAddresses(dummyInterfaceIndex: 7, bound: bound, node: [ip("192.168.1.10")])
    }

    func bind(_ addresses: Set<IPAddress>, current: NodeAddresses) throws -> (added: Int, removed: Int) {
        defer { bound = addresses }
        return (addresses.subtracting(current.bound).count, current.bound.subtracting(addresses).count)
    }

    func removeInterface(named name: String) throws { bound = [] }

    func changeAddresses(onInterface index: Int32, bound: Set<IPAddress>, adding: Set<IPAddress>,
                         removing: Set<IPAddress>) throws -> (added: Int, removed: Int) {
        #expect(index == 7)
        self.bound.subtract(removing)
        self.bound.formUnion(adding)
        return (adding.count, removing.count)
    }
}

@Suite struct IncrementalSyncTests {
    static func web(_ number: Int) -> Service {
        service("web-\(number)", type: .nodePort, clusterIPs: ["10.96.1.\(number)"],
                ports: [Service.Port(port: 80, nodePort: UInt16(30000 + number))])
    }

    static func endpoints(_ number: Int, _ addresses: [String]) -> EndpointSlice {
        slice("web-\(number)-a", service: "web-\(number)", endpoints: addresses.map { endpoint($0, node: "node-a") })
    }

    @Test func oneEndpointChangeReadsNothingAndWritesOneOperation() throws {
        let ipvs = CountingIPVS()
        let nft = CountingNFTables()
        let network = CountingNetwork()
        let agent = Agent(ipvs: ipvs, network: network, node: nodeA,
                          packetFilter: PacketFilterReconciler(handle: nft, config: PacketFilterConfig()))
        let services = (1...50).map(Self.web)
        let slices = (1...50).map { Self.endpoints($0, ["10.244.0.\($0)"]) }
        agent.take(ClusterChanges(adding: ClusterState(services: services, endpointSlices: slices)))
        _ = try agent.sync(resync: true)
        let (reads, looks, nftReads) = (ipvs.tableReads, network.looks, nft.reads)
        ipvs.operations = []

        agent.take(ClusterChanges(endpointSlices: [ObjectName(namespace: "default", name: "web-7-a"):
                                                    Self.endpoints(7, ["10.244.0.7", "10.244.1.7"])]))
        let report = try agent.sync(resync: false)
        #expect(ipvs.tableReads == reads, "the IPVS table is not read for a change")
        #expect(network.looks == looks, "nor the addresses")
        #expect(nft.reads == nftReads, "nor the nf_tables table")
        // A ClusterIP and a NodePort virtual server each get the new real server.
        #expect(ipvs.operations.count == 2)
        #expect(ipvs.operations.allSatisfy { if case .addRealServer = $0 { true } else { false } })
        // The new endpoint is local: one hairpin element, nothing else.
        #expect(report.packetFilter.elementsAdded == 1 && report.packetFilter.elementsDeleted == 0)

        // A resync then finds nothing to do.
        let resync = try agent.sync(resync: true)
        #expect(!resync.changed)
    }

    @Test func aDeletedServiceTakesItsVirtualServersAndAddressWith() throws {
        let ipvs = CountingIPVS()
        let network = CountingNetwork()
        let agent = Agent(ipvs: ipvs, network: network, node: nodeA)
        agent.take(ClusterChanges(adding: ClusterState(services: [Self.web(1), Self.web(2)])))
        _ = try agent.sync(resync: true)
        #expect(network.bound == [ip("10.96.1.1"), ip("10.96.1.2")])

        agent.take(ClusterChanges(services: [ObjectName(namespace: "default", name: "web-2"): nil]))
        let report = try agent.sync(resync: false)
        #expect(report.ipvs.virtualServersDeleted == 2)
        #expect(report.addressesUnbound == 1)
        #expect(network.bound == [ip("10.96.1.1")])
        #expect(ipvs.base.virtualServers().map(\.server.key).sorted() == [tcp("10.96.1.1", 80), tcp("192.168.1.10", 30001)])
    }

    /// Random changes synced one by one: a resync after each finds the kernel as a full sync would
    /// have left it.
    @Test(arguments: [11, 12, 13])
    func changesSyncedAloneLeaveWhatAResyncWants(seed: UInt64) throws {
        var random = SeededRandom(seed: seed)
        let ipvs = CountingIPVS()
        let nft = CountingNFTables()
        let network = CountingNetwork()
        let agent = Agent(ipvs: ipvs, network: network, node: nodeA,
                          packetFilter: PacketFilterReconciler(handle: nft, config: PacketFilterConfig()))
        _ = try agent.sync(resync: true)
        for step in 0..<120 {
            agent.take(RandomCluster.change(of: Int.random(in: 0..<12, using: &random), using: &random))
            _ = try agent.sync(resync: false)
            if step % 10 == 9 {
                let resync = try agent.sync(resync: true)
                #expect(!resync.changed, "step \(step): \(resync.ipvs), \(resync.packetFilter), +\(resync.addressesBound) -\(resync.addressesUnbound)")
            }
        }
    }

    /// The loop on its own thread: a change woken in reaches the kernel, and `stop` ends it.
    @Test func theLoopWakesOnChange() async throws {
        let ipvs = FakeIPVS()
        let agent = Agent(ipvs: ipvs, network: CountingNetwork(), node: nodeA)
        let source = PushSource()
        let loop = SyncLoop(agent: agent, source: source, minSyncPeriod: .zero, syncPeriod: .seconds(3600),
                            logger: Logger(label: "test"))
        let running = Task { await loop.run() }
        source.push(ClusterChanges(adding: ClusterState(services: [Self.web(1)])))
        try await eventually("the first sync (\(agent.objects.services.count) services taken)") { ipvs.virtualServers().count == 2 }
        source.push(ClusterChanges(services: [ObjectName(namespace: "default", name: "web-1"): nil]))
        try await eventually("the deletion") { ipvs.virtualServers().isEmpty }
        loop.stop()
        await running.value
    }
}

/// A source a test pushes changes into; it wakes the loop as a real one does.
private final class PushSource: ClusterSource, @unchecked Sendable {
    private let lock = NSLock()
    private var pending: ClusterChanges?
    private var wake: (@Sendable () -> Void)?

    var name: String { "push" }

    func poll() -> Result<ClusterChanges, LoadError>? {
        lock.withLock {
            defer { pending = nil }
            return pending.map { .success($0) }
        }
    }

    func setWake(_ wake: @escaping @Sendable () -> Void) {
        lock.withLock { self.wake = wake }
    }

    func push(_ changes: ClusterChanges) {
        let wake = lock.withLock { () -> (@Sendable () -> Void)? in
            if pending == nil { pending = changes } else { pending!.merge(changes) }
            return self.wake
        }
        wake?()
    }
}

/// Waits (at most 60 s: the whole suite runs at once on two cores) until `condition` holds.
private func eventually(_ what: String, _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(60)
    while !condition() {
        guard ContinuousClock.now < deadline else {
            Issue.record("\(what): not within 60 s")
            return
        }
        try await Task.sleep(for: .milliseconds(10))
    }
}
