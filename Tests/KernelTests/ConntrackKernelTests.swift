import Foundation
import HostNetwork
import IPVS
import Testing

/// The test kernel's conntrack table, and the `conntrack` tool (its own ctnetlink client) as the
/// witness and as the way to plant entries shaped like IPVS's.
enum ConntrackKernel {
    /// Root in the test kernel with ctnetlink. `KIPVS_CONNTRACK_TESTS=1` runs the suite on any
    /// kernel instead: only inside a throwaway network namespace (`unshare -n`), as it edits the table.
    static let available: Bool = {
        let asked = ProcessInfo.processInfo.environment["KIPVS_CONNTRACK_TESTS"] == "1"
        guard getuid() == 0, Kernel.hasIPVS || asked else { return false }
        // The guest loads only nf_conntrack (integration/uml.sh); the rest comes from its module tree.
        if FileManager.default.fileExists(atPath: "/run/mods/lib/modules") {
            _ = try? Kernel.run(["modprobe", "-q", "-d", "/run/mods", "-a",
                                 "nf_conntrack_netlink", "nf_tables", "nft_ct", "bridge", "nf_conntrack_bridge"])
        }
        do {
            _ = try KernelConntrack().entries(family: .inet, protocol: .udp)
            return true
        } catch {
            print("conntrack kernel tests skipped: \(error)")
            return false
        }
    }()

    static let hasTool = hasProgram("conntrack")
    static let hasNft = hasProgram("nft")

    static func hasProgram(_ name: String) -> Bool {
        ["/usr/sbin/", "/sbin/", "/usr/bin/"].contains { FileManager.default.isExecutableFile(atPath: $0 + name) }
    }

    /// `conntrack -L` lines of one protocol and family.
    static func listed(_ proto: String, _ family: IPAddress.Family) throws -> [String] {
        let result = try Kernel.run(["conntrack", "-L", "-p", proto, "-f", family == .inet ? "ipv4" : "ipv6"])
        guard result.status == 0 else { throw WitnessError(message: "conntrack -L: \(result.output)") }
        return result.output.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("conntrack v") }
    }

    /// Plants entries with `conntrack -R` (one process for all): each line holds `-I` options.
    static func insert(_ lines: [String]) throws {
        let result = try Kernel.run(["conntrack", "-R", "-"], input: lines.joined(separator: "\n") + "\n")
        guard result.status == 0 else { throw WitnessError(message: "conntrack -R: \(result.output)") }
    }

    /// A UDP flow from `client:port` to `vip:vport` that `reply` answers, as IPVS's masquerading leaves it.
    static func flow(_ client: String, _ port: UInt16, to vip: String, _ vport: UInt16, answeredBy reply: String,
                     _ rport: UInt16, proto: String = "udp") -> String {
        var line = "-I -p \(proto) -s \(client) -d \(vip) --sport \(port) --dport \(vport) -r \(reply) -q \(client) "
            + "--reply-port-src \(rport) --reply-port-dst \(port) -t 120"
        if proto == "tcp" { line += " --state ESTABLISHED" }
        return line
    }

    /// Deletes every entry from `client`, so each test starts from none of its own.
    static func forget(client: String, _ family: IPAddress.Family) throws {
        // Exit status 1 means there was nothing to delete.
        try Kernel.run(["conntrack", "-D", "-f", family == .inet ? "ipv4" : "ipv6", "-s", client])
    }
}

@Suite(.serialized, .enabled(if: ConntrackKernel.available, "needs root and ctnetlink inside the test kernel"))
struct ConntrackKernelTests {
    struct Addresses: Sendable, CustomTestStringConvertible {
        let family: IPAddress.Family
        let client, vip, otherVIP, kept, stale: String
        var testDescription: String { family == .inet ? "IPv4" : "IPv6" }
    }

    static let families = [
        Addresses(family: .inet, client: "198.51.100.1", vip: "203.0.113.10", otherVIP: "203.0.113.11",
                  kept: "10.244.1.5", stale: "10.244.2.5"),
        Addresses(family: .inet6, client: "2001:db8:c::1", vip: "2001:db8:96::10", otherVIP: "2001:db8:96::11",
                  kept: "2001:db8:244:1::5", stale: "2001:db8:244:2::5"),
    ]

    /// Flows of a virtual server that lost a real server: only the flows of the real server that
    /// stays, and of everything else, are left; `conntrack -L` sees the same.
    @Test(.enabled(if: ConntrackKernel.hasTool, "needs the conntrack tool"), arguments: families)
    func deletesTheFlowsAFilterNamesAndNothingElse(_ a: Addresses) throws {
        try ConntrackKernel.forget(client: a.client, a.family)
        try ConntrackKernel.insert([
            ConntrackKernel.flow(a.client, 40001, to: a.vip, 53, answeredBy: a.kept, 53),  // the real server that stays
            ConntrackKernel.flow(a.client, 40002, to: a.vip, 53, answeredBy: a.stale, 53),  // the one that went
            ConntrackKernel.flow(a.client, 40003, to: a.vip, 53, answeredBy: a.vip, 53),  // went nowhere: no real server then
            ConntrackKernel.flow(a.client, 40004, to: a.kept, 53, answeredBy: a.kept, 5353),  // the address, another port
            ConntrackKernel.flow(a.client, 40005, to: a.vip, 54, answeredBy: a.stale, 53),  // another port of the VIP
            ConntrackKernel.flow(a.client, 40006, to: a.otherVIP, 53, answeredBy: a.stale, 53),  // another VIP
            ConntrackKernel.flow(a.client, 40007, to: a.vip, 53, answeredBy: a.stale, 53, proto: "tcp"),  // TCP
        ])
        let conntrack = try KernelConntrack()
        let mine = { (entries: [ConntrackEntry]) in
            Set(entries.filter { $0.original.source == IPAddress(a.client)! }.map(\.original.sourcePort))
        }
        #expect(mine(try conntrack.entries(family: a.family, protocol: .udp)) == [40001, 40002, 40003, 40004, 40005, 40006])
        #expect(mine(try conntrack.entries(family: a.family, protocol: .tcp)) == [40007])

        let filter = ConntrackFilter(protocol: .udp, originalDestination: IPAddress(a.vip)!, originalPort: 53,
                                     keepReplySources: [RealServerKey(address: IPAddress(a.kept)!, port: 53)])
        #expect(try conntrack.deleteEntries(matching: [filter]) == 2)

        #expect(mine(try conntrack.entries(family: a.family, protocol: .udp)) == [40001, 40004, 40005, 40006])
        let udp = try ConntrackKernel.listed("udp", a.family).filter { $0.contains("src=\(a.client) ") }
        #expect(udp.count == 4)
        #expect(!udp.contains { $0.contains("sport=40002 ") || $0.contains("sport=40003 ") })
        #expect(try ConntrackKernel.listed("tcp", a.family).contains { $0.contains("sport=40007 ") })
        // Nothing left to match: a second pass deletes nothing.
        #expect(try conntrack.deleteEntries(matching: [filter]) == 0)
        try ConntrackKernel.forget(client: a.client, a.family)
    }

    /// Many entries: the deletes go out in several sends and every one is acknowledged.
    @Test(.enabled(if: ConntrackKernel.hasTool, "needs the conntrack tool"))
    func deletesInManyBatches() throws {
        let client = "198.51.100.2", vip = "203.0.113.20"
        try ConntrackKernel.forget(client: client, .inet)
        try ConntrackKernel.insert((0..<600).map { i in
            ConntrackKernel.flow(client, UInt16(20000 + i), to: vip, 53, answeredBy: i % 3 == 0 ? "10.244.1.5" : "10.244.2.5", 53)
        })
        let conntrack = try KernelConntrack()
        conntrack.batchLimit = 2048  // about 25 deletes a send
        let filter = ConntrackFilter(protocol: .udp, originalDestination: IPAddress(vip)!, originalPort: 53,
                                     keepReplySources: [RealServerKey(address: IPAddress("10.244.1.5")!, port: 53)])
        let sendsBefore = conntrack.connection.sends
        #expect(try conntrack.deleteEntries(matching: [filter]) == 400)
        #expect(conntrack.connection.sends - sendsBefore > 10)
        let left = try conntrack.entries(family: .inet, protocol: .udp).filter { $0.original.source == IPAddress(client)! }
        #expect(left.count == 200)
        #expect(left.allSatisfy { $0.reply.source == IPAddress("10.244.1.5")! })
        try ConntrackKernel.forget(client: client, .inet)
    }

    /// An entry that is gone by the time its delete arrives (expired, or deleted by someone else)
    /// is no error and is not counted; nor is one whose id is not the one the dump gave.
    @Test(.enabled(if: ConntrackKernel.hasTool, "needs the conntrack tool"))
    func entriesGoneBeforeTheirDeleteAreNoError() throws {
        let client = "198.51.100.3", vip = "203.0.113.30"
        try ConntrackKernel.forget(client: client, .inet)
        try ConntrackKernel.insert([
            ConntrackKernel.flow(client, 30001, to: vip, 53, answeredBy: "10.244.2.5", 53),
            ConntrackKernel.flow(client, 30002, to: vip, 53, answeredBy: "10.244.2.5", 53),
        ])
        let conntrack = try KernelConntrack()
        let dumped = try conntrack.entries(family: .inet, protocol: .udp).filter { $0.original.source == IPAddress(client)! }
        #expect(dumped.count == 2)
        let first = try #require(dumped.first { $0.original.sourcePort == 30001 })
        var second = try #require(dumped.first { $0.original.sourcePort == 30002 })
        let secondID = try #require(second.id)
        // Someone else deletes the first; the second stands for a newer entry of the same flow.
        try Kernel.run(["conntrack", "-D", "-p", "udp", "-s", client, "--sport", "30001"])
        second.id = secondID ^ 1
        #expect(try conntrack.delete([first, second]) == 0)
        let left = try conntrack.entries(family: .inet, protocol: .udp).filter { $0.original.source == IPAddress(client)! }
        #expect(left.map(\.original.sourcePort) == [30002])
        #expect(left.first?.id == secondID)
        try ConntrackKernel.forget(client: client, .inet)
    }

    /// Real datagrams on loopback: their entries are found and deleted by the same filters.
    @Test(.enabled(if: ConntrackKernel.hasNft, "needs nft to make the namespace track connections"))
    func realLoopbackTrafficIsTrackedAndCleaned() throws {
        let table = try LoopbackTracking.start()
        defer { LoopbackTracking.stop(table) }
        let conntrack = try KernelConntrack()
        for (family, host) in [(IPAddress.Family.inet, "127.0.0.1"), (.inet6, "::1")] {
            let address = IPAddress(host)!
            // Every redirection opens a new socket: a new source port, a new entry. Nothing listens.
            let script = "for i in 1 2 3; do echo a >/dev/udp/\(host)/45353; done; echo b >/dev/udp/\(host)/45354"
            let sent = try Kernel.run(["bash", "-c", script])
            try #require(sent.status == 0, "sending UDP to \(host): \(sent.output)")
            let ours = { (port: UInt16) in
                try conntrack.entries(family: family, protocol: .udp).filter {
                    $0.original.destination == address && $0.original.destinationPort == port
                }
            }
            #expect(try ours(45353).count == 3)
            #expect(try ours(45354).count == 1)
            #expect(try ours(45353).allSatisfy { $0.replySource == RealServerKey(address: address, port: 45353) })

            // Answered by the endpoint the filter keeps: nothing goes.
            let serving = ConntrackFilter(protocol: .udp, originalDestination: address, originalPort: 45353,
                                          keepReplySources: [RealServerKey(address: address, port: 45353)])
            #expect(try conntrack.deleteEntries(matching: [serving]) == 0)
            // Nothing serves any more: all three go, the other port stays.
            let gone = ConntrackFilter(protocol: .udp, originalDestination: address, originalPort: 45353)
            #expect(try conntrack.deleteEntries(matching: [gone]) == 3)
            #expect(try ours(45353).isEmpty)
            #expect(try ours(45354).count == 1)
            if ConntrackKernel.hasTool {
                let listed = try ConntrackKernel.listed("udp", family)
                #expect(!listed.contains { $0.contains("dport=45353 ") })
                #expect(listed.contains { $0.contains("dport=45354 ") })
            }
            _ = try conntrack.deleteEntries(matching: [ConntrackFilter(protocol: .udp, originalDestination: address, originalPort: 45354)])
        }
    }
}

/// Since Linux 4.10 a network namespace tracks connections only once something there needs it.
/// An nf_tables rule with a `ct` expression does: the `inet` family where the kernel has it; UML's
/// kernel has nf_tables only for bridges, and a bridge `ct` rule takes the IPv4 and IPv6 hooks too.
enum LoopbackTracking {
    static func start() throws -> String {
        for family in ["inet", "bridge"] {
            let chain = family == "inet" ? "type filter hook output priority 0" : "type filter hook prerouting priority 0"
            let rules = "table \(family) kipvs_ct_test {\n chain c {\n  \(chain)\n  ct state new counter\n }\n}\n"
            let result = try Kernel.run(["nft", "-f", "-"], input: rules)
            if result.status == 0 { return family }
        }
        throw WitnessError(message: "no nf_tables family with conntrack here (nft inet and bridge both refused)")
    }

    static func stop(_ family: String) {
        _ = try? Kernel.run(["nft", "delete", "table", family, "kipvs_ct_test"])
    }
}
