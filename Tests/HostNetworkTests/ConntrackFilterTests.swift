import IPVS
import Netlink
import Testing
@testable import HostNetwork

private func flow(_ proto: UInt8 = 17, to vip: String, _ port: UInt16, from real: String, _ realPort: UInt16,
                  client: UInt16 = 40000) -> ConntrackEntry {
    ConntrackEntry(original: ConntrackTuple(source: .v("198.51.100.1"), destination: .v(vip), protocolNumber: proto,
                                            sourcePort: client, destinationPort: port),
                   reply: ConntrackTuple(source: .v(real), destination: .v("198.51.100.1"), protocolNumber: proto,
                                         sourcePort: realPort, destinationPort: client))
}

private func key(_ address: String, _ port: UInt16) -> RealServerKey { RealServerKey(address: .v(address), port: port) }

@Suite struct ConntrackFilterTests {
    let filter = ConntrackFilter(protocol: .udp, originalDestination: .v("10.96.0.10"), originalPort: 53,
                                 keepReplySources: [key("10.244.1.5", 53)])

    @Test func matchesFlowsToTheFrontendNotAnsweredByAKeptRealServer() {
        #expect(filter.matches(flow(to: "10.96.0.10", 53, from: "10.244.2.5", 53)))
        #expect(filter.matches(flow(to: "10.96.0.10", 53, from: "10.96.0.10", 53)))  // no real server when it began
        #expect(filter.matches(flow(to: "10.96.0.10", 53, from: "10.244.1.5", 5353)))  // the kept address, another port
        #expect(!filter.matches(flow(to: "10.96.0.10", 53, from: "10.244.1.5", 53)))
        #expect(!filter.matches(flow(6, to: "10.96.0.10", 53, from: "10.244.2.5", 53)))  // TCP
        #expect(!filter.matches(flow(to: "10.96.0.10", 54, from: "10.244.2.5", 53)))
        #expect(!filter.matches(flow(to: "10.96.0.11", 53, from: "10.244.2.5", 53)))
    }

    @Test func theIndexAgreesWithTheFilters() {
        let other = ConntrackFilter(protocol: .udp, originalDestination: .v("fd00:96::10"), originalPort: 53)
        let index = ConntrackFilterIndex([filter, other])
        let flows = [
            flow(to: "10.96.0.10", 53, from: "10.244.2.5", 53), flow(to: "10.96.0.10", 53, from: "10.244.1.5", 53),
            flow(6, to: "10.96.0.10", 53, from: "10.244.2.5", 53), flow(to: "10.96.0.11", 53, from: "10.244.2.5", 53),
        ]
        for f in flows { #expect(index.matches(f) == filter.matches(f)) }
        #expect(index.dumps.map(\.family) == [.inet, .inet6])
        #expect(index.dumps.allSatisfy { $0.protocol == .udp })
        #expect(ConntrackFilterIndex([]).isEmpty)
    }

    /// Two filters for one frontend: an entry goes when either would delete it.
    @Test func filtersForOneFrontendAddUp() {
        let second = ConntrackFilter(protocol: .udp, originalDestination: .v("10.96.0.10"), originalPort: 53,
                                     keepReplySources: [key("10.244.1.5", 53), key("10.244.2.5", 53)])
        let index = ConntrackFilterIndex([second, filter])
        #expect(index.matches(flow(to: "10.96.0.10", 53, from: "10.244.2.5", 53)))
        #expect(!index.matches(flow(to: "10.96.0.10", 53, from: "10.244.1.5", 53)))
        #expect(index.dumps.count == 1)
    }

    @Test func descriptionNamesTheFrontendAndWhatStays() {
        #expect(filter.description == "UDP 10.96.0.10:53 keep [10.244.1.5:53]")
    }
}

@Suite struct FakeConntrackTests {
    @Test func deletesWhatTheFiltersMatchAndCountsIt() throws {
        let stale = flow(to: "10.96.0.10", 53, from: "10.244.2.5", 53, client: 1)
        let kept = flow(to: "10.96.0.10", 53, from: "10.244.1.5", 53, client: 2)
        let tcp = flow(6, to: "10.96.0.10", 53, from: "10.244.2.5", 53, client: 3)
        let fake = FakeConntrack([stale, kept, tcp])
        let filter = ConntrackFilter(protocol: .udp, originalDestination: .v("10.96.0.10"), originalPort: 53,
                                     keepReplySources: [key("10.244.1.5", 53)])
        #expect(fake.entries(family: .inet, protocol: .udp) == [stale, kept])
        #expect(fake.entries(family: .inet6, protocol: .udp).isEmpty)
        #expect(try fake.deleteEntries(matching: [filter]) == 1)
        #expect(fake.table == [kept, tcp])
        #expect(try fake.deleteEntries(matching: []) == 0)
        #expect(fake.deleteRequests == [[filter], []])
    }

    @Test func anInjectedFailureDeletesNothingOnce() throws {
        let stale = flow(to: "10.96.0.10", 53, from: "10.244.2.5", 53)
        let fake = FakeConntrack([stale])
        fake.failure = NetlinkError(errno: .noBufferSpace, operation: "list UDP conntrack entries (IPv4)")
        let filter = ConntrackFilter(protocol: .udp, originalDestination: .v("10.96.0.10"), originalPort: 53)
        #expect(throws: NetlinkError.self) { try fake.deleteEntries(matching: [filter]) }
        #expect(fake.table == [stale])
        #expect(try fake.deleteEntries(matching: [filter]) == 1)
    }
}
