import CNftnl
import Netlink
import Testing
@testable import NFTables

/// What libnftnl writes, libnftnl reads back to the same values: decode(encode(x)) == x.
@Suite struct RoundTripTests {
    let table = TableName(.inet, "kipvs")

    /// The single message `build` writes, as the socket would hand it over.
    func message(_ build: (MessageBatch) -> Void) throws -> NetlinkMessage {
        let batch = MessageBatch()
        build(batch)
        let bytes = batch.bytes
        try #require(batch.count == 1 && bytes.count >= 16)
        let type = UInt16(bytes[4]) | UInt16(bytes[5]) << 8
        let flags = UInt16(bytes[6]) | UInt16(bytes[7]) << 8
        return NetlinkMessage(type: type, flags: flags, sequence: 1, portID: 0, payload: Array(bytes[16...]))
    }

    static let r0 = Register.first
    static let expressions: [Expression] = [
        .payload(base: .network, offset: 16, length: 4, into: r0),
        .payload(base: .transport, offset: 2, length: 2, into: r0.advanced(by: 2)),
        .meta(.l4proto, into: r0.advanced(by: 1)),
        .meta(.iifname, into: r0),
        .setMeta(.mark, from: r0),
        .ct(.state, into: r0),
        .ct(.status, into: r0),
        .setCT(.mark, from: r0.advanced(by: 4)),
        .compare(.eq, r0, [6]),
        .compare(.gte, r0, [0, 0, 0x40, 0]),
        .bitwise(into: r0, from: r0, mask: [0, 0x40, 0, 0], xor: [0, 0, 0, 0]),
        .lookup(set: "services4", from: r0, into: nil, inverted: false),
        .lookup(set: "cidrs", from: r0, into: nil, inverted: true),
        .lookup(set: "marks", from: r0, into: r0.advanced(by: 3), inverted: false),
        .lookup(set: "targets", from: r0, into: .verdict, inverted: false),
        .immediate(r0, [0, 0x40, 0, 0]),
        .verdict(.accept), .verdict(.drop), .verdict(.return), .verdict(.jump("services")), .verdict(.goto("masquerading")),
        .masquerade(fullyRandom: true), .masquerade(fullyRandom: false),
        .reject(type: 2, code: 3), .reject(type: 1, code: 0), .reject(type: 0, code: 1),
        .counter,
    ]

    @Test(arguments: expressions)
    func expression(_ expression: Expression) throws {
        let rule = Rule(chain: "services", [expression])
        let read = try Libnftnl.parseRule(message {
            Libnftnl.rule(table, rule, setIDs: ["services4": 1], flags: Libnftnl.create, sequence: 1, into: $0)
        })
        #expect(read.table == "kipvs")
        #expect(read.rule == rule)
    }

    @Test func ruleWithEveryExpressionAndAComment() throws {
        let rule = Rule(chain: "services", Self.expressions, comment: "kube-system/kube-dns:dns cluster IP")
        let read = try Libnftnl.parseRule(message { Libnftnl.rule(table, rule, setIDs: [:], flags: Libnftnl.create, sequence: 1, into: $0) })
        #expect(read.rule == rule)
    }

    /// The kernel reports NFT_REG32_00 as NFT_REG_1 (the 16-byte register it starts).
    @Test func kernelRegisterNumbersReadAsThe32BitOnes() {
        #expect(Register(kernel: 1) == .first)
        #expect(Register(kernel: 2) == Register.first.advanced(by: 4))
        #expect(Register(kernel: 9) == Register.first.advanced(by: 1))
        #expect(Register(kernel: 0) == .verdict)
    }

    @Test(arguments: [
        Chain(name: "services"),
        Chain(name: "nat-prerouting", hook: ChainHook(type: .nat, hook: .prerouting, priority: ChainHook.dstnat)),
        Chain(name: "filter-forward", hook: ChainHook(type: .filter, hook: .forward, priority: ChainHook.filter - 1)),
        Chain(name: "mangle-output", hook: ChainHook(type: .route, hook: .output, priority: ChainHook.mangle)),
    ])
    func chain(_ chain: Chain) throws {
        let read = try Libnftnl.parseChain(message { Libnftnl.chain(table, chain, flags: Libnftnl.create, sequence: 1, into: $0) })
        #expect(read.table == "kipvs")
        #expect(read.chain == chain)
    }

    @Test(arguments: [
        SetSpec(name: "services4", key: [.ipv4Address, .inetProtocol, .inetService]),
        SetSpec(name: "services6", key: [.ipv6Address, .inetProtocol, .inetService]),
        SetSpec(name: "marks", key: [.ipv4Address, .inetProtocol, .inetService], data: .mark),
        SetSpec(name: "targets", key: [.ipv4Address], data: .verdict),
        SetSpec(name: "ranges", key: [.ipv4Address, .inetProtocol, .inetService, .ipv4Address], interval: true),
        SetSpec(name: "cidrs", key: [.ipv6Address], interval: true),
        SetSpec(name: "nodes", key: [.ipv4Address], data: .ipv4Address),
    ])
    func set(_ spec: SetSpec) throws {
        let read = try #require(try Libnftnl.parseSet(message { Libnftnl.set(table, spec, id: 7, flags: Libnftnl.create, sequence: 1, into: $0) }))
        #expect(read.table == "kipvs")
        #expect(read.set == spec)
    }

    @Test func elements() throws {
        let elements = [
            KernelElement(key: [10, 96, 0, 10, 6, 0, 0, 0, 0, 80, 0, 0], data: [0, 0x40, 0, 0]),
            KernelElement(key: [10, 0, 0, 0, 10, 1, 0, 0], keyEnd: [10, 0, 0, 0, 10, 1, 255, 255]),
            KernelElement(key: [10, 96, 0, 11], verdict: .jump("endpoints")),
            KernelElement(key: [10, 96, 0, 12], verdict: .drop),
            KernelElement(key: [192, 168, 2, 0], intervalEnd: true),
        ]
        let read = try Libnftnl.parseElements(asElementsReply(message {
            Libnftnl.elements(Libnftnl.newSetElement, table, set: "s", setID: nil, elements[...], flags: Libnftnl.create, sequence: 1, into: $0)
        }))
        #expect(read.table == "kipvs")
        #expect(read.set == "s")
        #expect(read.elements == elements)
    }

    /// A rule with an expression kipvs never writes is reported, not silently misread.
    @Test func unknownExpressionIsAnError() throws {
        let reply = try message { batch in
            Libnftnl.rule(table, Rule(chain: "services", [.counter]), setIDs: [:], flags: 0, sequence: 1, into: batch)
        }
        // Rename "counter" to "quota\0\0\0" in place: same length, an expression kipvs does not write.
        var payload = reply.payload
        let name = Array("counter".utf8)
        let at = try #require((0...(payload.count - name.count)).first { Array(payload[$0..<($0 + name.count)]) == name })
        payload.replaceSubrange(at..<(at + name.count), with: Array("quota".utf8) + [0, 0])
        let edited = NetlinkMessage(type: reply.type, flags: reply.flags, sequence: 1, portID: 0, payload: payload)
        #expect(throws: NFTablesError.self) { try Libnftnl.parseRule(edited) }
    }

    /// A reply libnftnl refuses without setting errno (an element key of no bytes) names what
    /// was parsed, as EPROTO.
    @Test func refusalWithoutErrnoIsEPROTO() {
        let reply = NetlinkMessage(type: UInt16(NFNL_SUBSYS_NFTABLES) << 8 | Libnftnl.newSetElement, flags: 0, sequence: 1, portID: 0,
                                   payload: [
            1, 0, 0, 0,  // nfgenmsg: family inet
            6, 0, 1, 0, 0x74, 0, 0, 0,  // NFTA_SET_ELEM_LIST_TABLE "t"
            6, 0, 2, 0, 0x73, 0, 0, 0,  // NFTA_SET_ELEM_LIST_SET "s"
            16, 0, 3, 0x80,  // NFTA_SET_ELEM_LIST_ELEMENTS
            12, 0, 1, 0x80,  // NFTA_LIST_ELEM
            8, 0, 1, 0x80,  // NFTA_SET_ELEM_KEY
            4, 0, 1, 0,  // NFTA_DATA_VALUE of no bytes
        ])
        #expect(throws: NFTablesError(errno: .protocolError, operation: "parse set elements")) { try Libnftnl.parseElements(reply) }
    }
}
