import Foundation
import NFTables
import Netlink
import Testing

/// Where the nf_tables contract runs: the fake always; the kernel where `inet` tables work and
/// the process is root (not in UML, whose kernel lacks them).
enum NFTVenue: String, CustomStringConvertible, Sendable {
    case fake, kernel

    var description: String { rawValue }

    static let available: [NFTVenue] = kernelHasInetTables ? [.fake, .kernel] : [.fake]

    /// Creating an inet table answers EOPNOTSUPP where the kernel lacks them, EPERM when not root.
    static let kernelHasInetTables: Bool = {
        guard getuid() == 0 else { return false }
        let probe = TableName(.inet, "kipvs_probe_\(getpid())")
        do {
            let nft = try KernelNFTables()
            try nft.commit([.addTable(probe)])
            try nft.commit([.deleteTable(probe)])
            return true
        } catch let error as NFTablesError where [.notSupported, .notPermitted, .protocolNotSupported].contains(error.errno) {
            return false
        } catch {
            return true  // something else is wrong: let the tests run and say what
        }
    }()
}

/// One contract for `FakeNFTables` and `KernelNFTables`; `nft list table` witnesses the kernel's side.
/// Every rule is inert: it matches only packets carrying mark bit 0x40000000, which nothing sets.
@Suite(.serialized) struct NFTablesKernelTests {
    /// A name of this process alone: test runs on one machine do not meet.
    let table = TableName(.inet, "kipvs_test_\(getpid())")

    func handle(_ venue: NFTVenue) throws -> any NFTablesHandle {
        switch venue {
        case .fake:
            return FakeNFTables()
        case .kernel:
            let nft = try KernelNFTables()
            if try nft.table(table) != nil { try nft.commit([.deleteTable(table)]) }
            return nft
        }
    }

    func nftList() throws -> String {
        try Kernel.run(["nft", "list", "table", "inet", table.name]).output
    }

    // MARK: The table kipvs-like rules live in

    static let chains = [
        Chain(name: "nat-prerouting", hook: ChainHook(type: .nat, hook: .prerouting, priority: ChainHook.dstnat)),
        Chain(name: "nat-postrouting", hook: ChainHook(type: .nat, hook: .postrouting, priority: ChainHook.srcnat)),
        Chain(name: "filter-input", hook: ChainHook(type: .filter, hook: .input, priority: ChainHook.filter)),
        Chain(name: "services"),
        Chain(name: "endpoints"),
        Chain(name: "masquerading"),
    ]

    static let services4 = SetSpec(name: "services4", key: [.ipv4Address, .inetProtocol, .inetService])
    static let marks = SetSpec(name: "marks", key: [.ipv4Address, .inetProtocol, .inetService], data: .mark)
    static let sourceRanges = SetSpec(name: "source-ranges", key: [.ipv4Address, .inetProtocol, .inetService, .ipv4Address],
                                      interval: true)
    static let cidrs = SetSpec(name: "cidrs", key: [.ipv4Address], interval: true)
    static let targets = SetSpec(name: "targets", key: [.ipv4Address], data: .verdict)
    static let sets = [services4, marks, sourceRanges, cidrs, targets]

    static func ip(_ text: String) -> [UInt8] { text.split(separator: ".").map { UInt8($0)! } }
    static func proto(_ p: UInt8) -> [UInt8] { [p, 0, 0, 0] }  // one byte, padded to its register
    static func port(_ p: UInt16) -> [UInt8] { [UInt8(p >> 8), UInt8(p & 0xff), 0, 0] }  // big-endian, padded
    static func mark(_ m: UInt32) -> [UInt8] { withUnsafeBytes(of: m.littleEndian) { Array($0) } }  // host order

    static func service(_ address: String, _ p: UInt8, _ number: UInt16) -> [UInt8] { ip(address) + proto(p) + port(number) }

    static let elements: [String: Set<SetElement>] = [
        "services4": [SetElement(key: service("10.96.0.10", 6, 80)), SetElement(key: service("10.96.0.53", 17, 53))],
        "marks": [SetElement(key: service("10.96.0.10", 6, 80), data: mark(0x4000))],
        "source-ranges": [SetElement(key: service("10.96.0.10", 6, 80) + ip("192.168.0.0"),
                                     keyEnd: service("10.96.0.10", 6, 80) + ip("192.168.255.255"))],
        "cidrs": [SetElement(key: ip("10.0.0.0"), keyEnd: ip("10.255.255.255")),
                  SetElement(key: ip("192.168.1.0"), keyEnd: ip("192.168.1.255"))],
        "targets": [SetElement(key: ip("10.96.0.10"), verdict: .jump("endpoints")), SetElement(key: ip("10.96.0.11"), verdict: .drop)],
    ]

    static let r0 = Register.first
    static let r1 = Register.first.advanced(by: 1)
    static let r2 = Register.first.advanced(by: 2)
    static let r3 = Register.first.advanced(by: 3)

    /// `meta mark & 0x40000000 != 0`: nothing sets the bit, so no packet is touched.
    static let guardMark: [NFTables.Expression] = [
        .meta(.mark, into: r0),
        .bitwise(into: r0, from: r0, mask: mark(0x4000_0000), xor: mark(0)),
        .compare(.neq, r0, mark(0)),
    ]
    /// `meta nfproto ipv4`: in an inet table, what lets nft name network-header fields.
    static let ipv4: [NFTables.Expression] = [.meta(.nfproto, into: r0), .compare(.eq, r0, [2])]
    /// `ip daddr . meta l4proto . th dport`
    static let serviceKey: [NFTables.Expression] = ipv4 + [
        .payload(base: .network, offset: 16, length: 4, into: r0),
        .meta(.l4proto, into: r1),
        .payload(base: .transport, offset: 2, length: 2, into: r2),
    ]

    /// An interface name as the kernel compares it: IFNAMSIZ bytes, NUL-padded.
    static let loopback: [UInt8] = Array("lo".utf8) + [UInt8](repeating: 0, count: 14)

    static let rules: [Rule] = [
        Rule(chain: "nat-prerouting", guardMark + serviceKey + [
            .lookup(set: "services4", from: r0, into: nil, inverted: false), .counter, .verdict(.jump("services")),
        ], comment: "cluster IPs"),
        Rule(chain: "nat-postrouting", guardMark + [
            .meta(.oifname, into: r0), .compare(.neq, r0, loopback),
            .verdict(.goto("masquerading")),
        ]),
        Rule(chain: "filter-input", guardMark + ipv4 + [
            .payload(base: .network, offset: 12, length: 4, into: r0),
            .lookup(set: "cidrs", from: r0, into: nil, inverted: true),
            .reject(type: 2, code: 3),  // icmpx admin-prohibited
        ]),
        Rule(chain: "filter-input", guardMark + [
            .meta(.l4proto, into: r0), .compare(.eq, r0, [6]), .reject(type: 1, code: 0),  // tcp reset
        ]),
        Rule(chain: "services", serviceKey + [
            .payload(base: .network, offset: 12, length: 4, into: r3),
            .lookup(set: "source-ranges", from: r0, into: nil, inverted: true), .verdict(.drop),
        ], comment: "loadBalancerSourceRanges"),
        Rule(chain: "services", serviceKey + [
            .lookup(set: "marks", from: r0, into: r3, inverted: false), .setMeta(.mark, from: r3),
        ]),
        Rule(chain: "services", [
            .ct(.state, into: r0), .bitwise(into: r0, from: r0, mask: mark(8), xor: mark(0)), .compare(.neq, r0, mark(0)),
            .immediate(r0, mark(0x4000)), .setMeta(.mark, from: r0), .meta(.mark, into: r1), .setCT(.mark, from: r1),
        ]),
        Rule(chain: "services", ipv4 + [
            .payload(base: .network, offset: 16, length: 4, into: r0),
            .lookup(set: "targets", from: r0, into: .verdict, inverted: false),
        ]),
        Rule(chain: "services", [.counter, .verdict(.return)]),
        Rule(chain: "endpoints", [.counter, .verdict(.accept)]),
        Rule(chain: "masquerading", [.masquerade(fullyRandom: true)], comment: "masquerade"),
        Rule(chain: "masquerading", [.masquerade(fullyRandom: false)]),
    ]

    var everything: [NFTOperation] {
        var operations: [NFTOperation] = [.addTable(table)]
        operations += Self.chains.map { NFTOperation.addChain(table, $0) }
        operations += Self.sets.map { NFTOperation.addSet(table, $0) }
        operations += Self.sets.map { NFTOperation.addElements(table, set: $0.name, Array(Self.elements[$0.name]!)) }
        operations += Self.rules.map { NFTOperation.addRule(table, $0) }
        return operations
    }

    // MARK: The contract

    /// Table, chains, sets, maps and rules in one transaction (rules find sets created with them);
    /// read back, they equal what was written; nft prints them as meant.
    @Test(arguments: NFTVenue.available)
    func writtenTableReadsBackEqual(venue: NFTVenue) throws {
        let nft = try handle(venue)
        #expect(try nft.table(table) == nil)
        try nft.commit(everything)
        let snapshot = try #require(try nft.table(table))
        #expect(snapshot.chains == Self.chains)
        #expect(snapshot.sets == Self.sets)
        #expect(snapshot.elements == Self.elements)
        #expect(snapshot.rules.count == Self.rules.count)
        for (read, written) in zip(snapshot.rules, Self.rules) { #expect(read == written) }

        guard venue == .kernel else { return }
        let listing = try nftList()
        for text in [
            "ip daddr . meta l4proto . th dport @services4 counter packets 0 bytes 0 jump services comment \"cluster IPs\"",
            "type nat hook prerouting priority dstnat; policy accept;",
            "type ipv4_addr . inet_proto . inet_service . ipv4_addr",
            "flags interval",
            "10.96.0.10 . tcp . 80 . 192.168.0.0/16",
            "10.0.0.0/8",
            "192.168.1.0/24",
            "type ipv4_addr : verdict",
            "10.96.0.10 : jump endpoints",
            "10.96.0.10 . tcp . 80 : 0x00004000",
            "meta mark set ip daddr . meta l4proto . th dport map @marks",
            "ip daddr vmap @targets",
            "ip saddr != @cidrs reject with icmpx admin-prohibited",
            "reject with tcp reset",
            "ct mark set meta mark",
            "goto masquerading",
            "masquerade fully-random comment \"masquerade\"",
            "oifname != \"lo\"",
        ] {
            #expect(listing.contains(text), "nft list table lacks: \(text)\n\(listing)")
        }
        try nft.commit([.deleteTable(table)])
    }

    /// Elements come and go in later transactions; the same element again is accepted, another
    /// value for a key is not, and deleting what is not there fails.
    @Test(arguments: NFTVenue.available)
    func elementsAddAndDelete(venue: NFTVenue) throws {
        let nft = try handle(venue)
        try nft.commit(everything)
        let web = SetElement(key: Self.service("10.96.0.20", 6, 443))
        let dns = SetElement(key: Self.service("10.96.0.53", 17, 53))
        let range = SetElement(key: Self.ip("172.16.0.0"), keyEnd: Self.ip("172.31.255.255"))
        try nft.commit([
            .addElements(table, set: "services4", [web]),
            .deleteElements(table, set: "services4", [dns]),
            .addElements(table, set: "cidrs", [range]),
            .deleteElements(table, set: "cidrs", [SetElement(key: Self.ip("192.168.1.0"), keyEnd: Self.ip("192.168.1.255"))]),
        ])
        var snapshot = try #require(try nft.table(table))
        #expect(snapshot.elements["services4"] == [SetElement(key: Self.service("10.96.0.10", 6, 80)), web])
        #expect(snapshot.elements["cidrs"] == [SetElement(key: Self.ip("10.0.0.0"), keyEnd: Self.ip("10.255.255.255")), range])

        try nft.commit([.addElements(table, set: "services4", [web])])  // no NLM_F_EXCL: accepted, nothing changes
        let existing = SetElement(key: Self.service("10.96.0.10", 6, 80), data: Self.mark(0x8000))
        expectFailure(errno: .fileExists, index: 0) { try nft.commit([.addElements(table, set: "marks", [existing])]) }
        expectFailure(errno: .noSuchFileOrDirectory, index: 1) {
            try nft.commit([.addElements(table, set: "services4", [dns]), .deleteElements(table, set: "services4", [dns, dns])])
        }
        expectFailure(errno: .noSuchFileOrDirectory, index: 0) { try nft.commit([.addElements(table, set: "nosuchset", [web])]) }
        snapshot = try #require(try nft.table(table))
        #expect(snapshot.elements["services4"] == [SetElement(key: Self.service("10.96.0.10", 6, 80)), web])
        #expect(snapshot.elements["marks"] == Self.elements["marks"])

        // A map's value changes by deleting and adding in one transaction.
        try nft.commit([.deleteElements(table, set: "marks", Array(Self.elements["marks"]!)), .addElements(table, set: "marks", [existing])])
        #expect(try nft.table(table)?.elements["marks"] == [existing])
        if venue == .kernel { try nft.commit([.deleteTable(table)]) }
    }

    /// Adding what exists (table, chains, sets) is accepted and changes nothing; a chain's hook
    /// cannot change, nor a regular chain become a base chain, nor a set change its type.
    @Test(arguments: NFTVenue.available)
    func addingWhatExistsIsAccepted(venue: NFTVenue) throws {
        let nft = try handle(venue)
        try nft.commit(everything)
        try nft.commit([.addTable(table)] + Self.chains.map { .addChain(table, $0) } + Self.sets.map { .addSet(table, $0) })
        let snapshot = try #require(try nft.table(table))
        #expect(snapshot.chains == Self.chains)
        #expect(snapshot.sets == Self.sets)
        #expect(snapshot.rules == Self.rules)
        let moved = Chain(name: "nat-prerouting", hook: ChainHook(type: .nat, hook: .output, priority: ChainHook.dstnat))
        // Debian 12's 6.1 answers EEXIST, kernels since 6.x EOPNOTSUPP: either refuses it.
        expectFailure(errno: [.fileExists, .notSupported], index: 0) { try nft.commit([.addChain(table, moved)]) }
        let hooked = Chain(name: "services", hook: ChainHook(type: .filter, hook: .input, priority: 0))
        expectFailure(errno: .fileExists, index: 1) { try nft.commit([.addTable(table), .addChain(table, hooked)]) }
        let retyped = SetSpec(name: "services4", key: [.ipv4Address, .inetProtocol, .inetService], interval: true)
        expectFailure(errno: .fileExists, index: 0) { try nft.commit([.addSet(table, retyped)]) }
        #expect(try nft.table(table)?.chains == Self.chains)
        #expect(try nft.table(table)?.sets == Self.sets)
        if venue == .kernel { try nft.commit([.deleteTable(table)]) }
    }

    /// A refused operation aborts the whole transaction; the error names it.
    @Test(arguments: NFTVenue.available)
    func failingTransactionChangesNothing(venue: NFTVenue) throws {
        let nft = try handle(venue)
        try nft.commit(everything)
        let before = try nft.table(table)
        let operations: [NFTOperation] = [
            .addElements(table, set: "services4", [SetElement(key: Self.service("10.96.0.99", 6, 8080))]),
            .addChain(table, Chain(name: "extra")),
            .addRule(table, Rule(chain: "no-such-chain", [.counter])),
            .addRule(table, Rule(chain: "services", [.counter])),
        ]
        var caught: NFTablesError?
        do {
            try nft.commit(operations)
        } catch let error as NFTablesError {
            caught = error
        }
        let error = try #require(caught)
        #expect(error.errno == .noSuchFileOrDirectory)
        #expect(error.operationIndex == 2)
        #expect(error.description == "add rule to chain inet \(table.name) no-such-chain: No such file or directory")
        #expect(try nft.table(table) == before)

        expectFailure(errno: .noSuchFileOrDirectory, index: 1) {
            try nft.commit([.addChain(table, Chain(name: "extra")), .addRule(table, Rule(chain: "services", [.verdict(.jump("nowhere"))]))])
        }
        expectFailure(errno: .noSuchFileOrDirectory, index: 0) {
            try nft.commit([.addRule(table, Rule(chain: "services", [.payload(base: .network, offset: 16, length: 4, into: Self.r0),
                                                                       .lookup(set: "nosuchset", from: Self.r0, into: nil, inverted: false)]))])
        }
        let elsewhere = TableName(.inet, table.name + "_missing")
        expectFailure(errno: .noSuchFileOrDirectory, index: 0) { try nft.commit([.addChain(elsewhere, Chain(name: "c"))]) }
        expectFailure(errno: .noSuchFileOrDirectory, index: 0) { try nft.commit([.deleteTable(elsewhere)]) }
        #expect(try nft.table(table) == before)
        #expect(try nft.table(elsewhere) == nil)
        if venue == .kernel { try nft.commit([.deleteTable(table)]) }
    }

    /// `nft delete table` behind kipvs' back: the next read says there is no table.
    @Test(arguments: NFTVenue.available)
    func tableDeletedFromOutsideReadsAsNil(venue: NFTVenue) throws {
        let nft = try handle(venue)
        try nft.commit(everything)
        #expect(try nft.table(table) != nil)
        switch venue {
        case .fake:
            (nft as! FakeNFTables).deleteFromOutside(table)
        case .kernel:
            #expect(try Kernel.run(["nft", "delete", "table", "inet", table.name]).status == 0)
        }
        #expect(try nft.table(table) == nil)
    }

    /// 50,000 elements in one transaction: split over many messages, sent in one datagram, all applied.
    @Test(arguments: NFTVenue.available)
    func fiftyThousandElementsInOneCommit(venue: NFTVenue) throws {
        let nft = try handle(venue)
        try nft.commit(everything)
        let many = (0..<50_000).map { (i: Int) -> SetElement in
            let address: [UInt8] = [10, 100, UInt8(i >> 8), UInt8(i & 0xff)]
            return SetElement(key: address + Self.proto(6) + Self.port(UInt16(1000 + i % 7)))
        }
        try nft.commit([.addElements(table, set: "services4", many)])
        let snapshot = try #require(try nft.table(table))
        #expect(snapshot.elements["services4"]?.count == 50_002)
        #expect(snapshot.elements["services4"]?.isSuperset(of: many) == true)
        try nft.commit([.deleteElements(table, set: "services4", many)])
        #expect(try nft.table(table)?.elements["services4"] == Self.elements["services4"])
        if venue == .kernel { try nft.commit([.deleteTable(table)]) }
    }

    /// More refusals than the receive buffer holds: the lost replies make the outcome unknown, and
    /// the error says so instead of passing for success. (The kernel still applied nothing here.)
    @Test(arguments: NFTVenue.available.filter { $0 == .kernel })
    func lostRepliesAreReportedAsUnknownState(venue: NFTVenue) throws {
        _ = try handle(venue)
        let nft = try KernelNFTables(receiveBuffer: 4 * 1024)
        try nft.commit(everything)
        let missing = (0..<2_000).map { i in
            NFTOperation.deleteElements(table, set: "services4", [SetElement(key: [10, 200, UInt8(i >> 8), UInt8(i & 0xff)] + Self.proto(6) + Self.port(80))])
        }
        #expect {
            try nft.commit(missing)
        } throws: { error in
            (error as? NFTablesError)?.description == "commit 2000 nf_tables operations: replies lost, whether the kernel applied it is unknown (ENOBUFS)"
        }
        #expect(try nft.table(table)?.elements == Self.elements)
        try nft.commit([.deleteTable(table)])
    }

    /// Expects `body` to throw an `NFTablesError` for operation `index`, with `errno`.
    func expectFailure(errno: Errno, index: Int, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
        expectFailure(errno: [errno], index: index, sourceLocation: sourceLocation, body)
    }

    /// Expects `body` to throw an `NFTablesError` for operation `index`, with one of `errno`.
    func expectFailure(errno: [Errno], index: Int, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("expected a failure of operation \(index)", sourceLocation: sourceLocation)
        } catch let error as NFTablesError {
            #expect(errno.contains(error.errno), "\(error)", sourceLocation: sourceLocation)
            #expect(error.operationIndex == index, "\(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
        }
    }
}
