import HostNetwork
import IPVS
import Testing
@testable import Proxy

private let dnsName = ServicePortName(namespace: "kube-system", name: "dns", port: "dns", protocol: .udp)

/// A desired state holding exactly these virtual servers and real servers.
private func state(_ table: [VirtualServerKey: [RealServer]]) -> DesiredState {
    DesiredState(virtualServers: table.reduce(into: [:]) { out, entry in
        out[entry.key] = DesiredVirtualServer(server: VirtualServer(key: entry.key, scheduler: "rr"), realServers: entry.value,
                                              service: dnsName)
    })
}

private func filter(_ address: String, _ port: UInt16, keep: [RealServerKey]) -> ConntrackFilter {
    ConntrackFilter(protocol: .udp, originalDestination: ip(address), originalPort: port, keepReplySources: Set(keep))
}

@Suite struct ConntrackCleanupTests {
    let dns = udp("10.96.0.10", 53)

    @Test func unchangedVirtualServersNeedNoCleanup() {
        let table = state([dns: [real("10.244.1.5", 53), real("10.244.2.5", 53)]])
        #expect(ConntrackCleanup.filters(from: table, to: table).isEmpty)
        #expect(ConntrackCleanup.filters(from: state([:]), to: state([:])).isEmpty)
    }

    @Test func aLostRealServerKeepsOnlyFlowsOfTheRemainingOnes() {
        let before = state([dns: [real("10.244.1.5", 53), real("10.244.2.5", 53)]])
        let after = state([dns: [real("10.244.1.5", 53)]])
        #expect(ConntrackCleanup.filters(from: before, to: after) == [filter("10.96.0.10", 53, keep: [rkey("10.244.1.5", 53)])])
    }

    @Test func aReplacedRealServerCountsAsLost() {
        let before = state([dns: [real("10.244.1.5", 53)]])
        let after = state([dns: [real("10.244.3.5", 53)]])
        #expect(ConntrackCleanup.filters(from: before, to: after) == [filter("10.96.0.10", 53, keep: [rkey("10.244.3.5", 53)])])
        // The same address on another port is another real server: flows to the old port are stale.
        let newPort = state([dns: [real("10.244.1.5", 5353)]])
        #expect(ConntrackCleanup.filters(from: before, to: newPort) == [filter("10.96.0.10", 53, keep: [rkey("10.244.1.5", 5353)])])
    }

    @Test func theLastRealServerGoingKeepsNothing() {
        let before = state([dns: [real("10.244.1.5", 53)]])
        let after = state([dns: []])
        #expect(ConntrackCleanup.filters(from: before, to: after) == [filter("10.96.0.10", 53, keep: [])])
    }

    @Test func theFirstRealServerClearsFlowsThatHadNowhereToGo() {
        let before = state([dns: []])
        let after = state([dns: [real("10.244.1.5", 53), real("10.244.2.5", 53)]])
        #expect(ConntrackCleanup.filters(from: before, to: after)
            == [filter("10.96.0.10", 53, keep: [rkey("10.244.1.5", 53), rkey("10.244.2.5", 53)])])
        // A virtual server that is new and already has real servers: its VIP may be reused.
        #expect(ConntrackCleanup.filters(from: state([:]), to: after)
            == [filter("10.96.0.10", 53, keep: [rkey("10.244.1.5", 53), rkey("10.244.2.5", 53)])])
    }

    @Test func onlyGainingRealServersNeedsNoCleanup() {
        let before = state([dns: [real("10.244.1.5", 53)]])
        let after = state([dns: [real("10.244.1.5", 53), real("10.244.2.5", 53)]])
        #expect(ConntrackCleanup.filters(from: before, to: after).isEmpty)
        // A new virtual server without real servers has nothing to keep or clear yet.
        #expect(ConntrackCleanup.filters(from: state([:]), to: state([dns: []])).isEmpty)
    }

    @Test func aRemovedVirtualServerClearsAllItsFlows() {
        let before = state([dns: [real("10.244.1.5", 53)], udp("10.96.0.11", 53): []])
        #expect(ConntrackCleanup.filters(from: before, to: state([:]))
            == [filter("10.96.0.10", 53, keep: []), filter("10.96.0.11", 53, keep: [])])
    }

    @Test func drainingRealServersKeepTheirFlows() {
        let before = state([dns: [real("10.244.1.5", 53), real("10.244.2.5", 53)]])
        let after = state([dns: [real("10.244.1.5", 53, weight: 0), real("10.244.2.5", 53)]])
        #expect(ConntrackCleanup.filters(from: before, to: after).isEmpty)
    }

    @Test func tcpAndFirewallMarkVirtualServersAreLeftAlone() {
        let web = tcp("10.96.0.20", 80)
        let mark = VirtualServerKey.firewallMark(.inet, 7)
        let before = state([web: [real("10.244.1.5", 80)], mark: [real("10.244.1.5", 53)]])
        #expect(ConntrackCleanup.filters(from: before, to: state([web: [], mark: []])).isEmpty)
        #expect(ConntrackCleanup.filters(from: before, to: state([:])).isEmpty)
    }

    @Test func filtersComeInVirtualServerOrder() {
        let v6 = udp("fd00:96::10", 53)
        let before = state([v6: [real("fd00:244::5", 53)], dns: [real("10.244.1.5", 53)], udp("10.96.0.9", 53): [real("10.244.1.5", 53)]])
        let filters = ConntrackCleanup.filters(from: before, to: state([:]))
        #expect(filters.map(\.originalDestination) == [ip("10.96.0.9"), ip("10.96.0.10"), ip("fd00:96::10")])
    }

    /// From Services and EndpointSlices: every address the Service answers on gets its filter, the
    /// node's NodePort addresses included.
    @Test func everyFrontendOfAUDPServiceIsCleaned() {
        let dnsService = service("dns", type: .nodePort, ports: [Service.Port(protocol: .udp, port: 53, nodePort: 30053)],
                                 externalIPs: ["203.0.113.7"])
        let ports = [EndpointSlice.Port(port: 53, protocol: .udp)]
        let both = DesiredState([dnsService], [slice("dns-1", service: "dns", ports: ports,
                                                      endpoints: [endpoint("10.244.1.5"), endpoint("10.244.2.5")])])
        let one = DesiredState([dnsService], [slice("dns-1", service: "dns", ports: ports, endpoints: [endpoint("10.244.1.5")])])
        let filters = ConntrackCleanup.filters(from: both, to: one)
        #expect(Set(filters.map { "\($0.originalDestination):\($0.originalPort)" })
            == ["10.96.0.10:53", "203.0.113.7:53", "192.168.1.10:30053"])
        #expect(filters.allSatisfy { $0.protocol == .udp && $0.keepReplySources == [rkey("10.244.1.5", 53)] })
    }

    /// The filters applied to a table: flows of the surviving real server and of other Services stay.
    @Test func appliedToATableTheFiltersDeleteExactlyTheStaleFlows() throws {
        let before = state([dns: [real("10.244.1.5", 53), real("10.244.2.5", 53)], udp("10.96.0.11", 53): [real("10.244.2.5", 53)]])
        let after = state([dns: [real("10.244.1.5", 53)], udp("10.96.0.11", 53): [real("10.244.2.5", 53)]])
        func flow(to vip: String, from realServer: String, clientPort: UInt16) -> ConntrackEntry {
            ConntrackEntry(original: ConntrackTuple(source: ip("10.0.0.1"), destination: ip(vip), protocolNumber: 17,
                                                    sourcePort: clientPort, destinationPort: 53),
                           reply: ConntrackTuple(source: ip(realServer), destination: ip("10.0.0.1"), protocolNumber: 17,
                                                 sourcePort: 53, destinationPort: clientPort))
        }
        let kept = flow(to: "10.96.0.10", from: "10.244.1.5", clientPort: 40001)
        let stale = flow(to: "10.96.0.10", from: "10.244.2.5", clientPort: 40002)
        let other = flow(to: "10.96.0.11", from: "10.244.2.5", clientPort: 40003)
        let conntrack = FakeConntrack([kept, stale, other])
        #expect(try conntrack.deleteEntries(matching: ConntrackCleanup.filters(from: before, to: after)) == 1)
        #expect(conntrack.table == [kept, other])
    }
}
