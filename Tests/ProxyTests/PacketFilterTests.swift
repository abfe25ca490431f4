import IPVS
import NFTables
import Testing
@testable import Proxy

/// The elements of every non-empty set, in nft notation: what a reader of `nft list table` sees.
private func elements(_ desired: DesiredState, vips: [String]) -> [String: [String]] {
    let computed = PacketFilterElements(desired, vips: Set(vips.map(ip)))
    return Dictionary(uniqueKeysWithValues: computed.sets.filter { !$0.value.isEmpty }.map { name, set in
        (name, set.map { PacketFilterFormat.element($0, in: name) }.sorted())
    })
}

private let pods = slice("web-1", service: "web", endpoints: [endpoint("10.244.0.5", node: "node-a"),
                                                             endpoint("10.244.1.6", node: "node-b")])

@Suite struct PacketFilterElementsTests {
    @Test func clusterIPOnly() {
        let desired = DesiredState([service("web")], [pods])
        #expect(elements(desired, vips: ["10.96.0.10"]) == [
            "transport-protocols": ["sctp", "tcp", "udp"],
            "cluster-ips-v4": ["10.96.0.10 . tcp . 80"],
            "services-v4": ["10.96.0.10 . tcp . 80"],
            "vips-v4": ["10.96.0.10"],
            // Only the endpoint on this node can reach itself through the node.
            "hairpin-v4": ["10.244.0.5 . 10.244.0.5"],
        ])
    }

    @Test func nodePortWithClusterPolicyIsMasqueraded() {
        let desired = DesiredState([service("web", type: .nodePort, ports: [Service.Port(port: 80, nodePort: 30080)])], [pods])
        let sets = elements(desired, vips: ["10.96.0.10"])
        #expect(sets["external-v4"] == ["192.168.1.10 . tcp . 30080"])
        #expect(sets["services-v4"] == ["10.96.0.10 . tcp . 80", "192.168.1.10 . tcp . 30080"])
        #expect(sets["local-policy-marks-v4"] == nil)
    }

    /// Set values as the status listing prints them; a value shorter than its type prints as `?`.
    @Test func setValuesPrintAndShortOnesDoNotTrap() {
        #expect(PacketFilterFormat.value(hostOrder(0x4000_0001)[...], .mark) == "0x40000001")
        #expect(PacketFilterFormat.value([0x1f, 0x90][...], .inetService) == "8080")
        #expect(PacketFilterFormat.value([17][...], .inetProtocol) == "udp")
        for type in [SetField.mark, .inetService, .inetProtocol, .ipv4Address] {
            #expect(PacketFilterFormat.value([][...], type) == "?")
        }
        #expect(PacketFilterFormat.value([1, 2, 3][...], .mark) == "?")
    }

    @Test func localPolicyMarksInClusterTrafficAndOpensTheHealthCheckPort() throws {
        var web = service("web", type: .loadBalancer, ports: [Service.Port(protocol: .udp, port: 53, nodePort: 30053)],
                          externalIPs: ["198.51.100.4"], externalPolicy: .local, loadBalancer: [.init(ip: ip("203.0.113.7"))])
        web.healthCheckNodePort = 32000
        let desired = DesiredState([web], [slice("web-1", service: "web", ports: [EndpointSlice.Port(port: 5353, protocol: .udp)],
                                                 endpoints: [endpoint("10.244.1.6", node: "node-b")])])
        let mark = try #require(InClusterFirewallMarks.assign(["default/web/UDP/IPv4"])["default/web/UDP/IPv4"])
        let hex = PacketFilterFormat.value(hostOrder(mark)[...], .mark)
        let sets = elements(desired, vips: ["10.96.0.10", "198.51.100.4", "203.0.113.7"])
        #expect(sets["local-policy-marks-v4"] == [
            "192.168.1.10 . udp . 30053 : \(hex)", "198.51.100.4 . udp . 53 : \(hex)", "203.0.113.7 . udp . 53 : \(hex)",
        ])
        #expect(sets["external-v4"] == nil)
        #expect(sets["health-check-ports"] == ["32000"])
        // The firewall-mark virtual server has every endpoint, the address ones only local ones (none here).
        #expect(desired.virtualServers[.firewallMark(.inet, mark)]?.realServers.keys.map(\.description) == ["10.244.1.6:5353"])
        #expect(desired.virtualServers[udp("203.0.113.7", 53)]?.realServers.isEmpty == true)
    }

    @Test func sourceRangesFirewallLoadBalancerIPsOnly() {
        var web = service("web", type: .loadBalancer, ports: [Service.Port(port: 443, nodePort: 30443)],
                          externalIPs: ["198.51.100.4"], loadBalancer: [.init(ip: ip("203.0.113.7")), .init(ip: ip("fd00:7::7"))])
        web.clusterIPs = [ip("10.96.0.10"), ip("fd00:96::10")]
        // Nested prefixes collapse into the outer one: an interval set refuses overlaps.
        web.loadBalancerSourceRanges = [CIDR("192.0.2.0/24")!, CIDR("192.0.2.128/25")!, CIDR("198.18.0.1/32")!,
                                        CIDR("2001:db8::/32")!]
        let sets = elements(DesiredState([web], [pods]), vips: [])
        #expect(sets["firewall-v4"] == ["203.0.113.7 . tcp . 443"])
        #expect(sets["firewall-allow-v4"] == [
            "203.0.113.7 . tcp . 443 . 192.0.2.0-192.0.2.255", "203.0.113.7 . tcp . 443 . 198.18.0.1",
        ])
        #expect(sets["firewall-v6"] == ["fd00:7::7 . tcp . 443"])
        #expect(sets["firewall-allow-v6"] == ["fd00:7::7 . tcp . 443 . 2001:db8::-2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"])
    }

    @Test func aRangeCoveringEverythingMeansNoFirewall() {
        var web = service("web", type: .loadBalancer, loadBalancer: [.init(ip: ip("203.0.113.7"))])
        web.loadBalancerSourceRanges = [CIDR("0.0.0.0/0")!, CIDR("192.0.2.0/24")!]
        let sets = elements(DesiredState([web], [pods]), vips: [])
        #expect(sets["firewall-v4"] == nil)
        #expect(sets["firewall-allow-v4"] == nil)
    }

    @Test func marksAreStableAndDistinct() {
        let names = (0..<5000).map { "ns/svc-\($0):http/TCP/IPv4" }
        let marks = InClusterFirewallMarks.assign(names)
        #expect(Set(marks.values).count == names.count)
        #expect(marks.values.allSatisfy { InClusterFirewallMarks.range.contains($0) })
        // Adding a Service keeps the others' marks unless it collides with one.
        let more = InClusterFirewallMarks.assign(names + ["ns/new:http/TCP/IPv4"])
        #expect(names.filter { marks[$0] != more[$0] }.count <= 1)
    }

    @Test func ownershipCoversOnlyKipvsMarks() {
        let ownership = Ownership(addresses: [])
        #expect(ownership.owns(.firewallMark(.inet, InClusterFirewallMarks.base | 7)))
        #expect(!ownership.owns(.firewallMark(.inet, 7)))
    }
}

@Suite struct RulesetTests {
    private func rules(_ config: PacketFilterConfig, chain: String) -> [NFTables.Rule] {
        Ruleset(config).rules.filter { $0.chain == chain }
    }

    @Test func clusterCIDRMasqueradesOnlyTrafficFromOutsideIt() {
        let config = PacketFilterConfig(localTraffic: .clusterCIDR([CIDR("10.244.0.0/16")!]))
        let prerouting = rules(config, chain: "nat-prerouting")
        let clusterIPs = prerouting.filter { $0.expressions.contains(.lookup(set: "cluster-ips-v4", from: .first, into: nil, inverted: false)) }
        #expect(clusterIPs.count == 1)
        // ip saddr & 255.255.0.0 != 10.244.0.0
        #expect(clusterIPs.first?.expressions.contains(.compare(.neq, .first, [10, 244, 0, 0])) == true)
        #expect(clusterIPs.first?.expressions.last == .verdict(.jump("mark-for-masquerade")))
        // Pods of the cluster CIDR get the in-cluster marks; IPv6 has no cluster CIDR here, so no rule.
        let marks = prerouting.filter { $0.expressions.contains(.setMeta(.mark, from: .first)) }
        #expect(marks.count == 1)
        #expect(marks.first?.expressions.contains(.compare(.eq, .first, [10, 244, 0, 0])) == true)
    }

    @Test func withoutADetectorOnlyMasqueradeAllTouchesClusterIPsFromPods() {
        let none = rules(PacketFilterConfig(), chain: "nat-prerouting")
        #expect(!none.contains { $0.expressions.contains(.lookup(set: "cluster-ips-v4", from: .first, into: nil, inverted: false)) })
        let all = rules(PacketFilterConfig(masqueradeAll: true), chain: "nat-prerouting")
        let clusterIPs = all.filter { $0.expressions.contains(.lookup(set: "cluster-ips-v4", from: .first, into: nil, inverted: false)) }
        #expect(clusterIPs.count == 1)
        #expect(!(clusterIPs.first?.expressions.contains { if case .compare(.neq, _, _) = $0 { true } else { false } } ?? true))
    }

    @Test func interfacePrefixComparesOnlyThePrefix() {
        let config = PacketFilterConfig(localTraffic: .interfaceNamePrefix(["veth"]))
        let prerouting = rules(config, chain: "nat-prerouting")
        #expect(prerouting.contains { $0.expressions.contains(.compare(.neq, .first, Array("veth".utf8))) })
        #expect(prerouting.contains { $0.expressions.contains(.compare(.eq, .first, Array("veth".utf8))) })
    }

    @Test func theNodeAlwaysMasqueradesAndUsesEveryEndpoint() {
        let output = rules(PacketFilterConfig(), chain: "nat-output")
        #expect(output.count == 6)
        #expect(output.allSatisfy { $0.expressions.last == .verdict(.jump("mark-for-masquerade")) })
    }

    @Test func everyLookupNamesASetOfTheRuleset() {
        let ruleset = Ruleset(PacketFilterConfig(localTraffic: .clusterCIDR([CIDR("10.244.0.0/16")!, CIDR("fd00:244::/48")!])))
        let names = Set(ruleset.sets.map(\.name))
        let chains = Set(ruleset.chains.map(\.name))
        for rule in ruleset.rules {
            #expect(chains.contains(rule.chain))
            for case .lookup(let set, _, _, _) in rule.expressions { #expect(names.contains(set), "\(set)") }
            for case .verdict(.jump(let target)) in rule.expressions { #expect(chains.contains(target)) }
        }
    }
}

@Suite struct PacketFilterPlanTests {
    let table = TableName(.inet, "kipvs")
    let ruleset = Ruleset(PacketFilterConfig())

    private func desired(_ services: [Service]) -> PacketFilterElements {
        PacketFilterElements(DesiredState(services, [pods]), vips: Set(services.flatMap(\.clusterIPs)))
    }

    @Test func aMissingTableIsBuiltWhole() {
        let plan = PacketFilterPlan(table: table, ruleset: ruleset, desired: desired([service("web")]), current: nil)
        #expect(plan.rebuild)
        #expect(Array(plan.operations.prefix(3)) == [.addTable(table), .deleteTable(table), .addTable(table)])
        #expect(plan.operations.filter { if case .addRule = $0 { true } else { false } }.count == ruleset.rules.count)
        // Rules come last: their lookups and jumps name sets and chains made before them.
        let firstRule = plan.operations.firstIndex { if case .addRule = $0 { true } else { false } }!
        #expect(plan.operations[firstRule...].allSatisfy { if case .addRule = $0 { true } else { false } })
    }

    @Test func aChangeOfServicesChangesOnlyElements() {
        let before = desired([service("web")])
        let current = TableSnapshot(chains: ruleset.chains, rules: ruleset.rules, sets: ruleset.sets, elements: before.sets)
        let after = desired([service("web"), service("db", clusterIPs: ["10.96.0.20"], ports: [Service.Port(port: 5432)])])
        let plan = PacketFilterPlan(table: table, ruleset: ruleset, desired: after, current: current)
        #expect(!plan.rebuild)
        #expect(plan.elementsDeleted == 0)
        // cluster-ips, services and vips each gain one element.
        #expect(plan.elementsAdded == 3)
        #expect(plan.description.contains("add element inet kipvs cluster-ips-v4 { 10.96.0.20 . tcp . 5432 }"))
    }

    @Test func nothingChangedIsAnEmptyPlan() {
        let state = desired([service("web")])
        let current = TableSnapshot(chains: ruleset.chains, rules: ruleset.rules, sets: ruleset.sets, elements: state.sets)
        #expect(PacketFilterPlan(table: table, ruleset: ruleset, desired: state, current: current).isEmpty)
    }

    @Test func aTamperedChainRebuildsTheTable() {
        let state = desired([service("web")])
        var rules = ruleset.rules
        rules.removeLast()
        let current = TableSnapshot(chains: ruleset.chains, rules: rules, sets: ruleset.sets, elements: state.sets)
        #expect(PacketFilterPlan(table: table, ruleset: ruleset, desired: state, current: current).rebuild)
    }
}

@Suite struct PacketFilterReconcilerTests {
    let config = PacketFilterConfig(localTraffic: .clusterCIDR([CIDR("10.244.0.0/16")!]))

    private func elements(_ services: [Service]) -> PacketFilterElements {
        PacketFilterElements(DesiredState(services, [pods]), vips: Set(services.flatMap(\.clusterIPs)))
    }

    @Test func firstSyncBuildsThenChangesAreElementsOnly() throws {
        let kernel = FakeNFTables()
        let reconciler = PacketFilterReconciler(handle: kernel, config: config)
        let first = try reconciler.sync(elements([service("web")]), readKernel: true)
        #expect(first.rebuilt)
        let table = try #require(kernel.table(config.table))
        #expect(reconciler.ruleset.matches(table))
        #expect(table.elements["cluster-ips-v4"]?.count == 1)

        let db = service("db", clusterIPs: ["10.96.0.20"])
        let second = try reconciler.sync(elements([service("web"), db]), readKernel: false)
        #expect(!second.rebuilt)
        #expect(second.elementsAdded == 3)
        #expect(kernel.commits.last?.allSatisfy { if case .addElements = $0 { true } else { false } } == true)

        // Nothing changed: no transaction at all.
        let commits = kernel.commits.count
        _ = try reconciler.sync(elements([service("web"), db]), readKernel: false)
        _ = try reconciler.sync(elements([service("web"), db]), readKernel: true)
        #expect(kernel.commits.count == commits)
    }

    @Test func aResyncRepairsATableDeletedFromOutside() throws {
        let kernel = FakeNFTables()
        let reconciler = PacketFilterReconciler(handle: kernel, config: config)
        _ = try reconciler.sync(elements([service("web")]), readKernel: true)
        kernel.deleteFromOutside(config.table)
        // Between resyncs kipvs trusts what it wrote; the periodic resync reads and repairs.
        _ = try reconciler.sync(elements([service("web")]), readKernel: false)
        #expect(kernel.table(config.table) == nil)
        let repaired = try reconciler.sync(elements([service("web")]), readKernel: true)
        #expect(repaired.rebuilt)
        #expect(kernel.table(config.table)?.elements["vips-v4"]?.count == 1)
    }

    @Test func aRefusedTransactionIsReportedAndReadAgainNextTime() throws {
        let kernel = FakeNFTables()
        let reconciler = PacketFilterReconciler(handle: kernel, config: config)
        _ = try reconciler.sync(elements([service("web")]), readKernel: true)
        kernel.deleteFromOutside(config.table)
        // An element change against a vanished table fails whole; the next sync reads and rebuilds.
        #expect(throws: NFTablesError.self) {
            try reconciler.sync(elements([service("web"), service("db", clusterIPs: ["10.96.0.20"])]), readKernel: false)
        }
        let next = try reconciler.sync(elements([service("web")]), readKernel: false)
        #expect(next.rebuilt)
    }

    @Test func cleanupRemovesOnlyItsTable() throws {
        let kernel = FakeNFTables()
        let other = TableName(.inet, "someone-else")
        try kernel.commit([.addTable(other)])
        let reconciler = PacketFilterReconciler(handle: kernel, config: config)
        _ = try reconciler.sync(elements([service("web")]), readKernel: true)
        #expect(try reconciler.remove())
        #expect(kernel.table(config.table) == nil)
        #expect(kernel.table(other) != nil)
        #expect(try !reconciler.remove())
    }
}

@Suite struct NodePortRangeTests {
    @Test func aNodePortOutsideTheRangeIsRefusedWithOneWarning() {
        var web = service("web", type: .nodePort, ports: [Service.Port(port: 80, nodePort: 22)])
        web.clusterIPs = [ip("10.96.0.10"), ip("fd00:96::10")]
        let desired = DesiredState([web], [pods])
        #expect(desired.virtualServers.keys.allSatisfy { if case .service(_, _, 22) = $0 { false } else { true } })
        #expect(desired.warnings.map(\.message) == ["nodePort 22 is outside the node port range 30000-32767; ignored"])
        #expect(desired.packetPath.external.isEmpty)
    }
}

/// A kernel whose table holds something kipvs cannot read (a rule someone else added).
private final class UnreadableTable: NFTablesHandle {
    let base = FakeNFTables()
    var unreadable = false

    func table(_ name: TableName) throws -> TableSnapshot? {
        if unreadable { throw NFTablesError(errno: .protocolError, operation: "read rules of \(name)") }
        return base.table(name)
    }

    func commit(_ operations: [NFTOperation]) throws {
        try base.commit(operations)
        if operations.contains(.deleteTable(TableName(.inet, "kipvs"))) { unreadable = false }
    }
}

@Suite struct UnreadableTableTests {
    @Test func aTableWithForeignRulesIsRebuilt() throws {
        let kernel = UnreadableTable()
        let reconciler = PacketFilterReconciler(handle: kernel, config: PacketFilterConfig())
        let elements = PacketFilterElements(DesiredState([service("web")], [pods]), vips: [ip("10.96.0.10")])
        _ = try reconciler.sync(elements, readKernel: true)
        kernel.unreadable = true
        #expect(try reconciler.sync(elements, readKernel: true).rebuilt)
        #expect(try !reconciler.sync(elements, readKernel: true).rebuilt)
    }
}
