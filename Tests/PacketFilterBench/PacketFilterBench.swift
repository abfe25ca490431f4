import Foundation
import IPVS
import NFTables
import Proxy

/// Times kipvs programming the packet filter for a generated cluster: the whole state on an
/// empty kernel, then one endpoint change. Writes the same table in `nft -f` syntax, so that the
/// guest script can time nft on identical content next to it. Prints figures; asserts nothing.
///
///   packet-filter-bench SERVICES FULL_NFT_FILE CHANGE_NFT_FILE
@main
struct PacketFilterBench {
    static let node = "bench-node"
    static let nodeAddress = IPAddress("192.168.77.10")!
    static let config = PacketFilterConfig(localTraffic: .clusterCIDR([CIDR("10.128.0.0/9")!]))

    static func main() throws {
        let arguments = CommandLine.arguments
        guard arguments.count == 4, let count = Int(arguments[1]) else {
            FileHandle.standardError.write(Data("usage: packet-filter-bench SERVICES FULL_NFT_FILE CHANGE_NFT_FILE\n".utf8))
            exit(2)
        }
        let nodeConfig = NodeConfig(nodeName: node, nodePortAddresses: [nodeAddress])
        let before = ClusterState(services: services(count), endpointSlices: slices(count, extra: false))
        let after = ClusterState(services: before.services, endpointSlices: slices(count, extra: true))

        let kernel = TimedNFTables(try KernelNFTables())
        let reconciler = PacketFilterReconciler(handle: kernel, config: config)
        let clock = ContinuousClock()

        var start = clock.now
        let desired = DesiredState(before, node: nodeConfig)
        let elements = PacketFilterElements(desired, vips: desired.addresses)
        let compute = clock.now - start
        start = clock.now
        let first = try reconciler.sync(elements, readKernel: true)
        let firstSync = clock.now - start
        let firstCommit = kernel.lastCommit

        start = clock.now
        let changedDesired = DesiredState(after, node: nodeConfig)
        let changedElements = PacketFilterElements(changedDesired, vips: changedDesired.addresses)
        let changeCompute = clock.now - start
        start = clock.now
        let change = try reconciler.sync(changedElements, readKernel: false)
        let changeSync = clock.now - start
        let changeCommit = kernel.lastCommit

        // The periodic resync: the whole table read back and compared; nothing should be written.
        let commitsBefore = kernel.commits
        start = clock.now
        let resync = try reconciler.sync(changedElements, readKernel: true)
        let resyncTime = clock.now - start

        print("kipvs: \(count) Services, \(elements.count) set elements, \(reconciler.ruleset.rules.count) rules")
        print("kipvs full state:   desired state \(ms(compute)), reconcile + commit \(ms(firstSync)), of which kernel commit \(ms(firstCommit)) (\(first))")
        print("kipvs one endpoint: desired state \(ms(changeCompute)), reconcile + commit \(ms(changeSync)), of which kernel commit \(ms(changeCommit)) (\(change))")
        print("kipvs resync:       table read and compared in \(ms(resyncTime)), \(kernel.commits - commitsBefore) commits (\(resync))")

        try nftScript(reconciler.ruleset, elements).write(toFile: arguments[2], atomically: true, encoding: .utf8)
        let plan = PacketFilterPlan(table: config.table, ruleset: reconciler.ruleset, desired: changedElements,
                                    current: TableSnapshot(chains: reconciler.ruleset.chains, rules: reconciler.ruleset.rules,
                                                           sets: reconciler.ruleset.sets, elements: elements.sets))
        try (plan.description + "\n").write(toFile: arguments[3], atomically: true, encoding: .utf8)
    }

    static func ipv4(_ value: UInt32) -> IPAddress { IPAddress(family: .inet, high: UInt64(value) << 32, low: 0) }

    static func ms(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let value = Double(seconds) * 1000 + Double(attoseconds) / 1e15
        return value >= 1000 ? "\((value / 10).rounded() / 100) s" : "\((value * 100).rounded() / 100) ms"
    }

    /// `10.96.0.0/12`-style cluster IPs; every tenth Service also a NodePort.
    static func services(_ count: Int) -> [Service] {
        (0..<count).map { s in
            let vip = ipv4(0x0A60_0000 + UInt32(s) + 1)
            let nodePort = s % 10 == 0
            return Service(metadata: ObjectMeta(name: "svc-\(s)", namespace: "bench"), type: nodePort ? .nodePort : .clusterIP,
                           clusterIPs: [vip],
                           ports: [Service.Port(port: 80, targetPort: .number(8080), nodePort: nodePort ? UInt16(30000 + s / 10) : nil)])
        }
    }

    /// Ten endpoints each, one in ten on this node; `extra` adds an eleventh, local, to the first Service.
    static func slices(_ count: Int, extra: Bool) -> [EndpointSlice] {
        (0..<count).map { s in
            let total = extra && s == 0 ? 11 : 10
            let endpoints = (0..<total).map { r in
                EndpointSlice.Endpoint(addresses: [ipv4(0x0A80_0000 + UInt32(s * 16 + r))],
                                       conditions: .ready, nodeName: r == 0 || r == 10 ? node : "other-node")
            }
            return EndpointSlice(metadata: ObjectMeta(name: "svc-\(s)-abc", namespace: "bench",
                                                      labels: [WellKnown.serviceName: "svc-\(s)"]),
                                 addressType: .ipv4, endpoints: endpoints, ports: [EndpointSlice.Port(port: 8080)])
        }
    }

    /// The same table for `nft -f`: its sets with their elements, and rules of the same meaning.
    static func nftScript(_ ruleset: Ruleset, _ elements: PacketFilterElements) -> String {
        var out = "table inet kipvs {\n"
        for set in ruleset.sets {
            let kind = set.data == nil ? "set" : "map"
            let fields = set.key.map(PacketFilterFormat.typeName).joined(separator: " . ")
                + (set.data.map { " : " + PacketFilterFormat.typeName($0) } ?? "")
            out += "  \(kind) \(set.name) {\n    type \(fields)\n"
            if set.interval { out += "    flags interval\n" }
            let members = (elements.sets[set.name] ?? []).map { PacketFilterFormat.element($0, in: set.name) }.sorted()
            if !members.isEmpty { out += "    elements = { " + members.joined(separator: ",\n      ") + " }\n" }
            out += "  }\n"
        }
        out += """
              chain mark-for-masquerade { ct mark set ct mark | 0x4000; }
              chain firewall-check {
                ip daddr . meta l4proto . th dport @firewall-v4 ip daddr . meta l4proto . th dport . ip saddr != @firewall-allow-v4 drop
                ip6 daddr . meta l4proto . th dport @firewall-v6 ip6 daddr . meta l4proto . th dport . ip6 saddr != @firewall-allow-v6 drop
              }
              chain nat-prerouting {
                type nat hook prerouting priority -100;
                ip daddr . meta l4proto . th dport @cluster-ips-v4 ip saddr != 10.128.0.0/9 jump mark-for-masquerade
                ip daddr . meta l4proto . th dport @external-v4 jump mark-for-masquerade
                ip saddr 10.128.0.0/9 meta mark set ip daddr . meta l4proto . th dport map @local-policy-marks-v4
                ip6 daddr . meta l4proto . th dport @external-v6 jump mark-for-masquerade
              }
              chain nat-output {
                type nat hook output priority -100;
                ip daddr . meta l4proto . th dport @cluster-ips-v4 jump mark-for-masquerade
                ip daddr . meta l4proto . th dport @external-v4 jump mark-for-masquerade
                meta mark set ip daddr . meta l4proto . th dport map @local-policy-marks-v4 jump mark-for-masquerade
                ip6 daddr . meta l4proto . th dport @cluster-ips-v6 jump mark-for-masquerade
                ip6 daddr . meta l4proto . th dport @external-v6 jump mark-for-masquerade
                meta mark set ip6 daddr . meta l4proto . th dport map @local-policy-marks-v6 jump mark-for-masquerade
              }
              chain nat-postrouting {
                type nat hook postrouting priority 100;
                ct mark & 0x4000 != 0 masquerade fully-random
                ip saddr . ip daddr @hairpin-v4 masquerade
                ip6 saddr . ip6 daddr @hairpin-v6 masquerade
              }
              chain filter-prerouting { type filter hook prerouting priority -110; ct state new jump firewall-check; }
              chain filter-output { type filter hook output priority -110; ct state new jump firewall-check; }
              chain filter-input {
                type filter hook input priority 0;
                ct state new meta l4proto @transport-protocols ip daddr @vips-v4 ip daddr . meta l4proto . th dport != @services-v4 th dport != @health-check-ports reject
                ct state new meta l4proto @transport-protocols ip6 daddr @vips-v6 ip6 daddr . meta l4proto . th dport != @services-v6 th dport != @health-check-ports reject
              }
            }

            """
        return out
    }
}

/// Times each commit: the kernel's share of a sync.
final class TimedNFTables: NFTablesHandle {
    let base: any NFTablesHandle
    var lastCommit: Duration = .zero
    var commits = 0

    init(_ base: any NFTablesHandle) { self.base = base }

    func table(_ name: TableName) throws -> TableSnapshot? { try base.table(name) }

    func commit(_ operations: [NFTOperation]) throws {
        let clock = ContinuousClock()
        let start = clock.now
        defer { lastCommit = clock.now - start; commits += 1 }
        try base.commit(operations)
    }
}
