import HostNetwork
import IPVS
import NFTables
import Netlink
import Testing
@testable import Proxy

/// The node's interfaces in memory: one node address, and a dummy interface that holds what it is told.
private final class MemoryNodeNetwork: NodeNetwork {
    private(set) var bound: Set<IPAddress>?

    func addresses(dummyInterface name: String, create: Bool) throws -> NodeAddresses {
        if create, bound == nil { bound = [] }
        return NodeAddresses(dummyInterfaceIndex: bound == nil ? nil : 1, bound: bound ?? [], node: [ip("192.168.1.10")])
    }

    func bind(_ addresses: Set<IPAddress>, current: NodeAddresses) throws -> (added: Int, removed: Int) {
        bound = addresses
        return (addresses.subtracting(current.bound).count, current.bound.subtracting(addresses).count)
    }

    func removeInterface(named name: String) throws { bound = nil }
}

@Suite struct AgentPacketPathTests {
    let dns = service("dns", clusterIPs: ["10.96.0.53"], ports: [Service.Port(protocol: .udp, port: 53)])

    func endpoints(_ addresses: [String]) -> EndpointSlice {
        slice("dns-1", service: "dns", ports: [EndpointSlice.Port(port: 5353, protocol: .udp)],
              endpoints: addresses.map { endpoint($0, node: "node-a") })
    }

    /// A client's flow to the cluster IP that IPVS sent to `endpoint`.
    func flow(from port: UInt16, to endpoint: String) -> ConntrackEntry {
        ConntrackEntry(original: ConntrackTuple(source: ip("10.244.9.9"), destination: ip("10.96.0.53"), protocolNumber: 17,
                                                sourcePort: port, destinationPort: 53),
                       reply: ConntrackTuple(source: ip(endpoint), destination: ip("10.244.9.9"), protocolNumber: 17,
                                             sourcePort: 5353, destinationPort: port))
    }

    @Test func aSyncProgramsTheTableAndDeletesFlowsToARemovedEndpoint() throws {
        let kernel = FakeNFTables()
        let conntrack = FakeConntrack([flow(from: 40001, to: "10.244.0.5"), flow(from: 40002, to: "10.244.0.6")])
        let agent = Agent(ipvs: FakeIPVS(), network: MemoryNodeNetwork(), node: nodeA,
                          packetFilter: PacketFilterReconciler(handle: kernel, config: PacketFilterConfig()), conntrack: conntrack)
        _ = try agent.sync(ClusterState(services: [dns], endpointSlices: [endpoints(["10.244.0.5", "10.244.0.6"])]))
        let table = try #require(kernel.table(PacketFilterConfig().table))
        #expect(table.elements["cluster-ips-v4"]?.map { PacketFilterFormat.element($0, in: "cluster-ips-v4") } == ["10.96.0.53 . udp . 53"])
        #expect(conntrack.table.count == 2)

        let report = try agent.sync(ClusterState(services: [dns], endpointSlices: [endpoints(["10.244.0.5"])]), readKernel: false)
        #expect(report.conntrackEntriesDeleted == 1)
        #expect(conntrack.table.map(\.replySource.description) == ["10.244.0.5:5353"])
    }

    @Test func aFailedCleanupIsReportedAndRetried() throws {
        let conntrack = FakeConntrack([flow(from: 40002, to: "10.244.0.6")])
        let agent = Agent(ipvs: FakeIPVS(), network: MemoryNodeNetwork(), node: nodeA, conntrack: conntrack)
        _ = try agent.sync(ClusterState(services: [dns], endpointSlices: [endpoints(["10.244.0.5", "10.244.0.6"])]))
        conntrack.failure = NetlinkError(errno: .noBufferSpace, operation: "dump conntrack")
        let failed = try agent.sync(ClusterState(services: [dns], endpointSlices: [endpoints(["10.244.0.5"])]), readKernel: false)
        #expect(failed.conntrackFailure != nil)
        #expect(conntrack.table.count == 1)
        conntrack.failure = nil
        let retried = try agent.sync(ClusterState(services: [dns], endpointSlices: [endpoints(["10.244.0.5"])]), readKernel: false)
        #expect(retried.conntrackEntriesDeleted == 1)
        #expect(conntrack.table.isEmpty)
    }
}

/// A kernel with nf_tables for bridges only, as UML's: every inet table is refused.
private final class NoInetTables: NFTablesHandle {
    func table(_ name: TableName) throws -> TableSnapshot? { nil }
    func commit(_ operations: [NFTOperation]) throws {
        throw NFTablesError(errno: .notSupported, operationIndex: 0, operation: "add table inet kipvs")
    }
}

@Suite struct NoPacketFilterTests {
    @Test func aKernelWithoutInetTablesStillGetsItsVirtualServers() throws {
        let ipvs = FakeIPVS()
        let agent = Agent(ipvs: ipvs, network: MemoryNodeNetwork(), node: nodeA,
                          packetFilter: PacketFilterReconciler(handle: NoInetTables(), config: PacketFilterConfig()))
        let report = try agent.sync(ClusterState(services: [service("web")], endpointSlices: []))
        #expect(report.packetFilterUnavailable != nil)
        #expect(report.ipvs.virtualServersAdded == 1)
        #expect(agent.packetFilter == nil)
        #expect(try agent.sync(ClusterState(services: [service("web")], endpointSlices: [])).packetFilterUnavailable == nil)
    }
}

@Suite struct PlanWithoutPacketFilterTests {
    @Test func aKernelWithoutInetTablesPlansNoTable() throws {
        let agent = Agent(ipvs: FakeIPVS(), network: MemoryNodeNetwork(), node: nodeA,
                          packetFilter: PacketFilterReconciler(handle: NoInetTables(), config: PacketFilterConfig()))
        #expect(try agent.plan(ClusterState(services: [service("web")], endpointSlices: [])).packetFilter == nil)
        let able = Agent(ipvs: FakeIPVS(), network: MemoryNodeNetwork(), node: nodeA,
                         packetFilter: PacketFilterReconciler(handle: FakeNFTables(), config: PacketFilterConfig()))
        #expect(try able.plan(ClusterState(services: [service("web")], endpointSlices: [])).packetFilter?.rebuild == true)
    }
}
