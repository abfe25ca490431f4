import CNftnl
import Netlink

/// What libnftnl's parsers take for granted in a reply, checked before a reply reaches them.
/// libnftnl 1.2 ends the process (`exit`) on an attribute of the wrong size; `strdup`s strings
/// without looking for their NUL; reads a verdict's code and chain from a table it never cleared;
/// writes a set's concatenated fields into a 16-entry array without counting; files an element's
/// attributes in a table too small for the types it lets through; and calls an expression without
/// a name by a null name. Each check below stands for one of those. What kipvs never writes (set
/// and element expressions, expressions other than its own) is refused here too, as `parseExpr`
/// would refuse it: the reply is unreadable (EPROTO) and kipvs rebuilds its table.
enum ReplyShape {
    /// How libnftnl reads an attribute.
    indirect enum Shape: Sendable {
        /// Exactly 1, 4 or 8 bytes (`mnl_attr_validate` refuses fewer and more).
        case u8, u32, u64
        /// At least one byte, and a NUL inside: libnftnl copies it with `strdup`.
        case string
        case binary
        /// Attributes by type; libnftnl skips types above `max` and those it does not read.
        /// `refused` are types kipvs never writes.
        case nest(max: Int, [Int: Shape], refused: Set<Int> = [])
        /// Only NFTA_LIST_ELEM attributes, each of this shape.
        case list(Shape)
        /// `union nftnl_data_reg`: a value, or a verdict.
        case data
        /// One expression: a name kipvs writes, and the data as that expression reads it.
        case expression
        /// A set's concatenated fields, each a list element of field lengths.
        case concatFields
    }

    enum Kind: String {
        case chain, set, setElements = "set elements", rule
    }

    /// Throws EPROTO, naming where the reply is wrong, unless libnftnl can parse it safely.
    static func check(_ message: NetlinkMessage, as kind: Kind) throws(NFTablesError) {
        let (type, shape) = expected(kind)
        let payload = padded(message.payload)
        do throws(Refusal) {
            guard message.type == UInt16(NFNL_SUBSYS_NFTABLES) << 8 | type else {
                throw Refusal("message type \(message.type), not \(UInt16(NFNL_SUBSYS_NFTABLES) << 8 | type)")
            }
            guard message.payloadCount >= 4 else { throw Refusal("\(message.payloadCount) bytes, without a whole nfgenmsg") }
            try check(shape, payload, 4..<payload.count, kind.rawValue)
        } catch {
            throw NFTablesError(errno: .protocolError, operation: "parse \(kind.rawValue): \(error.message)")
        }
    }

    /// The payload zero-padded to a multiple of 4 bytes, as libnftnl is given it.
    static func padded(_ payload: [UInt8]) -> [UInt8] {
        payload + [UInt8](repeating: 0, count: (4 - payload.count % 4) % 4)
    }

    struct Refusal: Error {
        var message: String
        init(_ message: String) { self.message = message }
    }

    // MARK: - The walk

    /// Each attribute's type and payload, as libmnl walks them: a truncated attribute ends the walk.
    private static func attributes(_ bytes: [UInt8], _ range: Range<Int>,
                                   _ body: (Int, Range<Int>) throws(Refusal) -> Void) throws(Refusal) {
        var at = range.lowerBound
        while at + 4 <= range.upperBound {
            let length = Int(bytes[at]) | Int(bytes[at + 1]) << 8
            guard length >= 4, at + length <= range.upperBound else { return }
            let type = (Int(bytes[at + 2]) | Int(bytes[at + 3]) << 8) & 0x3fff  // NLA_TYPE_MASK
            try body(type, (at + 4)..<(at + length))
            at += (length + 3) & ~3
        }
    }

    private static func check(_ shape: Shape, _ bytes: [UInt8], _ range: Range<Int>, _ path: String) throws(Refusal) {
        switch shape {
        case .u8: try size(range, 1, path)
        case .u32: try size(range, 4, path)
        case .u64: try size(range, 8, path)
        case .string:
            guard bytes[range].contains(0) else { throw Refusal("\(path): a string without its NUL") }
        case .binary:
            return
        case .nest(let max, let policy, let refused):
            try nest(range, path)
            try attributes(bytes, range) { type, inner throws(Refusal) in
                if refused.contains(type) { throw Refusal("\(path).\(type): kipvs writes none") }
                guard type <= max, let shape = policy[type] else { return }
                try check(shape, bytes, inner, "\(path).\(type)")
            }
        case .list(let element):
            try nest(range, path)
            try attributes(bytes, range) { type, inner throws(Refusal) in
                guard type == listElement else { throw Refusal("\(path): attribute \(type) in a list") }
                try check(element, bytes, inner, "\(path)[]")
            }
        case .data:
            try check(.nest(max: dataMax, [dataValue: .binary]), bytes, range, path)
            try attributes(bytes, range) { type, inner throws(Refusal) in
                if type == dataVerdict { try verdict(bytes, inner, "\(path).\(type)") }
            }
        case .expression:
            try expression(bytes, range, path)
        case .concatFields:
            var fields = 0
            try attributes(bytes, range) { type, inner throws(Refusal) in
                guard type == listElement else { return }  // libnftnl skips anything else
                try attributes(bytes, inner) { type, field throws(Refusal) in
                    guard type == fieldLength else { return }
                    try size(field, 4, "\(path)[].\(type)")
                    fields += 1
                }
            }
            guard fields <= registerCount else { throw Refusal("\(path): \(fields) concatenated fields, more than \(registerCount)") }
        }
    }

    /// A verdict: its code always (libnftnl reads it unchecked), and a chain for jump and goto.
    private static func verdict(_ bytes: [UInt8], _ range: Range<Int>, _ path: String) throws(Refusal) {
        try check(.nest(max: verdictMax, [verdictCode: .u32, verdictChain: .string, verdictChainID: .u32]), bytes, range, path)
        var code: Int32?
        var chain = false
        try attributes(bytes, range) { type, inner throws(Refusal) in
            if type == verdictCode { code = Int32(bitPattern: inner.reduce(0) { $0 << 8 | UInt32(bytes[$1]) }) }
            if type == verdictChain { chain = true }
        }
        guard let code else { throw Refusal("\(path): a verdict without its code") }
        if (code == NFT_JUMP.rawValue || code == NFT_GOTO.rawValue) && !chain {
            throw Refusal("\(path): a jump without its chain")
        }
    }

    /// An expression: libnftnl looks its name up unchecked and reads its data as the name says.
    private static func expression(_ bytes: [UInt8], _ range: Range<Int>, _ path: String) throws(Refusal) {
        try check(.nest(max: expressionMax, [expressionName: .string, expressionData: .nest(max: Int.max, [:])]), bytes, range, path)
        var name: String?
        var data: [Range<Int>] = []
        try attributes(bytes, range) { type, inner throws(Refusal) in
            if type == expressionName { name = String(decoding: bytes[inner].prefix { $0 != 0 }, as: UTF8.self) }
            if type == expressionData { data.append(inner) }
        }
        guard let name else { throw Refusal("\(path): an expression without a name") }
        guard let policy = expressions[name] else { throw Refusal("\(path): expression \(name), which kipvs does not write") }
        for inner in data { try check(policy, bytes, inner, "\(path) \(name)") }
    }

    private static func size(_ range: Range<Int>, _ bytes: Int, _ path: String) throws(Refusal) {
        guard range.count == bytes else { throw Refusal("\(path): \(range.count) bytes where \(bytes) belong") }
    }

    /// libmnl: an empty nest is fine, another holds at least one attribute header.
    private static func nest(_ range: Range<Int>, _ path: String) throws(Refusal) {
        guard range.isEmpty || range.count >= 4 else { throw Refusal("\(path): a nest of \(range.count) bytes") }
    }

    // MARK: - libnftnl 1.2's policies

    private static func n<T: RawRepresentable>(_ value: T) -> Int where T.RawValue: BinaryInteger { Int(value.rawValue) }

    private static let listElement = n(NFTA_LIST_ELEM)
    private static let fieldLength = n(NFTA_SET_FIELD_LEN)
    private static let registerCount = n(NFT_REG32_15) - n(NFT_REG32_00) + 1
    private static let dataMax = n(__NFTA_DATA_MAX) - 1
    private static let dataValue = n(NFTA_DATA_VALUE)
    private static let dataVerdict = n(NFTA_DATA_VERDICT)
    private static let verdictMax = n(__NFTA_VERDICT_MAX) - 1
    private static let verdictCode = n(NFTA_VERDICT_CODE)
    private static let verdictChain = n(NFTA_VERDICT_CHAIN)
    private static let verdictChainID = n(NFTA_VERDICT_CHAIN_ID)
    private static let expressionMax = n(__NFTA_EXPR_MAX) - 1
    private static let expressionName = n(NFTA_EXPR_NAME)
    private static let expressionData = n(NFTA_EXPR_DATA)

    private static func expected(_ kind: Kind) -> (UInt16, Shape) {
        switch kind {
        case .chain: (UInt16(NFT_MSG_NEWCHAIN.rawValue), chain)
        case .set: (UInt16(NFT_MSG_NEWSET.rawValue), set)
        case .setElements: (UInt16(NFT_MSG_NEWSETELEM.rawValue), setElements)
        case .rule: (UInt16(NFT_MSG_NEWRULE.rawValue), rule)
        }
    }

    private static let counters = Shape.nest(max: n(__NFTA_COUNTER_MAX) - 1, [
        n(NFTA_COUNTER_BYTES): .u64, n(NFTA_COUNTER_PACKETS): .u64,
    ])

    private static let chain = Shape.nest(max: n(__NFTA_CHAIN_MAX) - 1, [
        n(NFTA_CHAIN_TABLE): .string, n(NFTA_CHAIN_NAME): .string, n(NFTA_CHAIN_TYPE): .string,
        n(NFTA_CHAIN_HANDLE): .u64, n(NFTA_CHAIN_POLICY): .u32, n(NFTA_CHAIN_USE): .u32, n(NFTA_CHAIN_FLAGS): .u32,
        n(NFTA_CHAIN_ID): .u32, n(NFTA_CHAIN_USERDATA): .binary, n(NFTA_CHAIN_COUNTERS): counters,
        n(NFTA_CHAIN_HOOK): .nest(max: n(__NFTA_HOOK_MAX) - 1, [
            n(NFTA_HOOK_HOOKNUM): .u32, n(NFTA_HOOK_PRIORITY): .u32, n(NFTA_HOOK_DEV): .string,
            n(NFTA_HOOK_DEVS): .list(.string),  // NFTA_DEVICE_NAME is NFTA_LIST_ELEM's number
        ]),
    ])

    private static let set = Shape.nest(max: n(__NFTA_SET_MAX) - 1, [
        n(NFTA_SET_TABLE): .string, n(NFTA_SET_NAME): .string, n(NFTA_SET_HANDLE): .u64,
        n(NFTA_SET_FLAGS): .u32, n(NFTA_SET_KEY_TYPE): .u32, n(NFTA_SET_KEY_LEN): .u32, n(NFTA_SET_DATA_TYPE): .u32,
        n(NFTA_SET_DATA_LEN): .u32, n(NFTA_SET_OBJ_TYPE): .u32, n(NFTA_SET_ID): .u32, n(NFTA_SET_POLICY): .u32,
        n(NFTA_SET_GC_INTERVAL): .u32, n(NFTA_SET_TIMEOUT): .u64, n(NFTA_SET_USERDATA): .binary,
        n(NFTA_SET_DESC): .nest(max: n(__NFTA_SET_DESC_MAX) - 1, [
            n(NFTA_SET_DESC_SIZE): .u32, n(NFTA_SET_DESC_CONCAT): .concatFields,
        ]),
    ], refused: [n(NFTA_SET_EXPR), n(NFTA_SET_EXPRESSIONS)])

    /// libnftnl checks an element's types against the set's maximum, then files them in a table
    /// sized for the element's: types past the element's maximum are refused.
    private static let element = Shape.nest(max: n(__NFTA_SET_ELEM_MAX) - 1, [
        n(NFTA_SET_ELEM_FLAGS): .u32, n(NFTA_SET_ELEM_TIMEOUT): .u64, n(NFTA_SET_ELEM_EXPIRATION): .u64,
        n(NFTA_SET_ELEM_KEY): .data, n(NFTA_SET_ELEM_KEY_END): .data, n(NFTA_SET_ELEM_DATA): .data,
        n(NFTA_SET_ELEM_USERDATA): .binary, n(NFTA_SET_ELEM_OBJREF): .string,
    ], refused: Set([n(NFTA_SET_ELEM_EXPR), n(NFTA_SET_ELEM_EXPRESSIONS)]).union((n(__NFTA_SET_ELEM_MAX))...(n(__NFTA_SET_MAX) - 1)))

    private static let setElements = Shape.nest(max: n(__NFTA_SET_ELEM_LIST_MAX) - 1, [
        n(NFTA_SET_ELEM_LIST_TABLE): .string, n(NFTA_SET_ELEM_LIST_SET): .string, n(NFTA_SET_ELEM_LIST_SET_ID): .u32,
        n(NFTA_SET_ELEM_LIST_ELEMENTS): .list(element),
    ])

    private static let rule = Shape.nest(max: n(__NFTA_RULE_MAX) - 1, [
        n(NFTA_RULE_TABLE): .string, n(NFTA_RULE_CHAIN): .string, n(NFTA_RULE_HANDLE): .u64, n(NFTA_RULE_POSITION): .u64,
        n(NFTA_RULE_USERDATA): .binary, n(NFTA_RULE_ID): .u32, n(NFTA_RULE_POSITION_ID): .u32,
        n(NFTA_RULE_COMPAT): .nest(max: n(__NFTA_RULE_COMPAT_MAX) - 1, [
            n(NFTA_RULE_COMPAT_PROTO): .u32, n(NFTA_RULE_COMPAT_FLAGS): .u32,
        ]),
        n(NFTA_RULE_EXPRESSIONS): .list(.expression),
    ])

    /// The expressions kipvs writes, as libnftnl reads their data.
    private static let expressions: [String: Shape] = [
        "payload": .nest(max: n(__NFTA_PAYLOAD_MAX) - 1, Dictionary(uniqueKeysWithValues: [
            NFTA_PAYLOAD_SREG, NFTA_PAYLOAD_DREG, NFTA_PAYLOAD_BASE, NFTA_PAYLOAD_OFFSET, NFTA_PAYLOAD_LEN,
            NFTA_PAYLOAD_CSUM_TYPE, NFTA_PAYLOAD_CSUM_OFFSET, NFTA_PAYLOAD_CSUM_FLAGS,
        ].map { (n($0), Shape.u32) })),
        "meta": .nest(max: n(__NFTA_META_MAX) - 1, [n(NFTA_META_KEY): .u32, n(NFTA_META_DREG): .u32, n(NFTA_META_SREG): .u32]),
        "ct": .nest(max: n(__NFTA_CT_MAX) - 1, [
            n(NFTA_CT_KEY): .u32, n(NFTA_CT_DREG): .u32, n(NFTA_CT_SREG): .u32, n(NFTA_CT_DIRECTION): .u8,
        ]),
        "cmp": .nest(max: n(__NFTA_CMP_MAX) - 1, [n(NFTA_CMP_SREG): .u32, n(NFTA_CMP_OP): .u32, n(NFTA_CMP_DATA): .data]),
        "bitwise": .nest(max: n(__NFTA_BITWISE_MAX) - 1, [
            n(NFTA_BITWISE_SREG): .u32, n(NFTA_BITWISE_DREG): .u32, n(NFTA_BITWISE_OP): .u32, n(NFTA_BITWISE_LEN): .u32,
            n(NFTA_BITWISE_MASK): .data, n(NFTA_BITWISE_XOR): .data, n(NFTA_BITWISE_DATA): .data,
        ]),
        "lookup": .nest(max: n(__NFTA_LOOKUP_MAX) - 1, [
            n(NFTA_LOOKUP_SREG): .u32, n(NFTA_LOOKUP_DREG): .u32, n(NFTA_LOOKUP_SET_ID): .u32, n(NFTA_LOOKUP_FLAGS): .u32,
            n(NFTA_LOOKUP_SET): .string,
        ]),
        "immediate": .nest(max: n(__NFTA_IMMEDIATE_MAX) - 1, [n(NFTA_IMMEDIATE_DREG): .u32, n(NFTA_IMMEDIATE_DATA): .data]),
        "masq": .nest(max: n(__NFTA_MASQ_MAX) - 1, [
            n(NFTA_MASQ_FLAGS): .u32, n(NFTA_MASQ_REG_PROTO_MIN): .u32, n(NFTA_MASQ_REG_PROTO_MAX): .u32,
        ]),
        "reject": .nest(max: n(__NFTA_REJECT_MAX) - 1, [n(NFTA_REJECT_TYPE): .u32, n(NFTA_REJECT_ICMP_CODE): .u8]),
        "counter": counters,
    ]
}
