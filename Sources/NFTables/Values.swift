/// nf_tables objects as plain values: what kipvs writes, and what it reads back to compare.
///
/// Expressions are the kernel's own (the bytecode `nft --debug=netlink` prints), not nft's
/// language: a rule read back from the kernel compares equal to the rule that was written.

/// `NFPROTO_*`: the family of a table.
public enum TableFamily: UInt8, Hashable, Sendable, CustomStringConvertible {
    case inet = 1
    case ip = 2
    case ip6 = 10

    public var description: String {
        switch self {
        case .inet: "inet"
        case .ip: "ip"
        case .ip6: "ip6"
        }
    }
}

public struct TableName: Hashable, Sendable, CustomStringConvertible {
    public var family: TableFamily
    public var name: String

    public init(_ family: TableFamily, _ name: String) {
        self.family = family
        self.name = name
    }

    public var description: String { "\(family) \(name)" }
}

/// A base chain's hook, or none for a regular chain reached by jumps.
public struct ChainHook: Hashable, Sendable {
    public enum ChainType: String, Hashable, Sendable {
        case filter, nat, route
    }

    /// `NF_INET_*` hook numbers.
    public enum Hook: UInt32, Hashable, Sendable {
        case prerouting = 0
        case input = 1
        case forward = 2
        case output = 3
        case postrouting = 4
    }

    public var type: ChainType
    public var hook: Hook
    public var priority: Int32

    public init(type: ChainType, hook: Hook, priority: Int32) {
        self.type = type
        self.hook = hook
        self.priority = priority
    }

    /// nft's named priorities.
    public static let dstnat: Int32 = -100
    public static let mangle: Int32 = -150
    public static let filter: Int32 = 0
    public static let srcnat: Int32 = 100
}

public struct Chain: Hashable, Sendable {
    public var name: String
    /// nil for a regular chain.
    public var hook: ChainHook?

    public init(name: String, hook: ChainHook? = nil) {
        self.name = name
        self.hook = hook
    }
}

/// `NFT_REG32_00`…`NFT_REG32_15`: 4-byte registers; a concatenation uses consecutive ones.
public struct Register: Hashable, Sendable {
    public var rawValue: UInt32

    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// The first 32-bit register, `NFT_REG32_00`.
    public static let first = Register(rawValue: 8)
    /// The verdict register, `NFT_REG_VERDICT`.
    public static let verdict = Register(rawValue: 0)

    /// `n` 32-bit registers after this one.
    public func advanced(by n: Int) -> Register { Register(rawValue: rawValue + UInt32(n)) }
}

public enum Verdict: Hashable, Sendable {
    case accept
    case drop
    case `return`
    case jump(String)
    case goto(String)
}

/// One kernel expression (`struct nft_expr_type`), with the attributes kipvs uses.
public enum Expression: Hashable, Sendable {
    /// `NFT_PAYLOAD_*_HEADER`.
    public enum PayloadBase: UInt32, Hashable, Sendable {
        case link = 0
        case network = 1
        case transport = 2
    }

    /// `NFT_META_*`.
    public enum MetaKey: UInt32, Hashable, Sendable {
        case mark = 3
        case iifname = 6
        case oifname = 7
        case nfproto = 15
        case l4proto = 16
    }

    /// `NFT_CT_*`.
    public enum CTKey: UInt32, Hashable, Sendable {
        case state = 0
        case direction = 1
        case status = 2
        case mark = 3
    }

    /// `NFT_CMP_*`.
    public enum CompareOperator: UInt32, Hashable, Sendable {
        case eq = 0
        case neq = 1
        case lt = 2
        case lte = 3
        case gt = 4
        case gte = 5
    }

    /// `payload load LEN @ BASE + OFFSET => REG`
    case payload(base: PayloadBase, offset: UInt32, length: UInt32, into: Register)
    /// `meta load KEY => REG`
    case meta(MetaKey, into: Register)
    /// `meta set KEY with REG`
    case setMeta(MetaKey, from: Register)
    /// `ct load KEY => REG`
    case ct(CTKey, into: Register)
    /// `ct set KEY with REG`
    case setCT(CTKey, from: Register)
    /// `cmp OP REG DATA`
    case compare(CompareOperator, Register, [UInt8])
    /// `bitwise REG = (SREG & MASK) ^ XOR`, over `mask.count` bytes.
    case bitwise(into: Register, from: Register, mask: [UInt8], xor: [UInt8])
    /// `lookup SREG set NAME [dreg DREG]`; `inverted` matches when the key is absent.
    case lookup(set: String, from: Register, into: Register?, inverted: Bool)
    /// `immediate REG DATA`
    case immediate(Register, [UInt8])
    /// `immediate reg 0 VERDICT`
    case verdict(Verdict)
    /// `masq [flags]`: `NF_NAT_RANGE_PROTO_RANDOM_FULLY` when `fullyRandom`.
    case masquerade(fullyRandom: Bool)
    /// `reject type TYPE code CODE`
    case reject(type: UInt32, code: UInt8)
    /// `counter`: packets and bytes are the kernel's; they never take part in comparisons.
    case counter
}

public struct Rule: Hashable, Sendable {
    public var chain: String
    public var expressions: [Expression]
    /// Stored as the rule's user data, as `nft` stores `comment "…"`; shown by `nft list table`.
    public var comment: String?

    public init(chain: String, _ expressions: [Expression], comment: String? = nil) {
        self.chain = chain
        self.expressions = expressions
        self.comment = comment
    }
}

/// A field of a set key or map value, as nft's data types name them (`TYPE_*` in nft's datatype.h).
public enum SetField: UInt32, Hashable, Sendable {
    case verdict = 1
    case ipv4Address = 7
    case ipv6Address = 8
    case inetProtocol = 12
    case inetService = 13
    case mark = 19

    /// Bytes of the value itself.
    public var length: Int {
        switch self {
        case .verdict: 4
        case .ipv4Address: 4
        case .ipv6Address: 16
        case .inetProtocol: 1
        case .inetService: 2
        case .mark: 4
        }
    }

    /// Bytes it takes in a concatenation: every field starts on a register boundary.
    public var paddedLength: Int { (length + 3) / 4 * 4 }
}

public struct SetSpec: Hashable, Sendable {
    public var name: String
    public var key: [SetField]
    /// The value type for a map; nil for a plain set.
    public var data: SetField?
    /// Elements are ranges (`flags interval`): each element carries a key and a key end.
    public var interval: Bool

    public init(name: String, key: [SetField], data: SetField? = nil, interval: Bool = false) {
        self.name = name
        self.key = key
        self.data = data
        self.interval = interval
    }

    /// `NFTA_SET_KEY_LEN`: a lone field is its own length (nft's listing asserts on a padded one);
    /// in a concatenation every field is padded to 4 bytes.
    public var keyLength: Int { key.count == 1 ? key[0].length : key.reduce(0) { $0 + $1.paddedLength } }

    /// `NFTA_SET_KEY_TYPE`: nft's concatenated type id, 6 bits a field, first field highest.
    public var keyType: UInt32 { key.reduce(0) { $0 << 6 | $1.rawValue } }
}

/// One set or map element. `key` and `keyEnd` are the concatenated fields, each padded to 4 bytes
/// (a lone field unpadded), in the kernel's byte order for that field (addresses and ports
/// big-endian, marks host order).
public struct SetElement: Hashable, Sendable {
    public var key: [UInt8]
    /// For interval sets: the last key the element covers (inclusive).
    public var keyEnd: [UInt8]?
    /// For maps: the value.
    public var data: [UInt8]?
    /// For verdict maps (`data: .verdict`): the value, in place of `data`.
    public var verdict: Verdict?

    public init(key: [UInt8], keyEnd: [UInt8]? = nil, data: [UInt8]? = nil, verdict: Verdict? = nil) {
        self.key = key
        self.keyEnd = keyEnd
        self.data = data
        self.verdict = verdict
    }
}

/// What one table holds, as read back from the kernel.
public struct TableSnapshot: Hashable, Sendable {
    public var chains: [Chain]
    /// Every rule, grouped by chain in `chains` order, each chain's rules in kernel order.
    public var rules: [Rule]
    public var sets: [SetSpec]
    public var elements: [String: Set<SetElement>]

    public init(chains: [Chain] = [], rules: [Rule] = [], sets: [SetSpec] = [], elements: [String: Set<SetElement>] = [:]) {
        self.chains = chains
        self.rules = rules
        self.sets = sets
        self.elements = elements
    }
}

/// One step of a transaction.
public enum NFTOperation: Hashable, Sendable {
    /// Creates the table if it does not exist (no `NLM_F_EXCL`).
    case addTable(TableName)
    case deleteTable(TableName)
    case addChain(TableName, Chain)
    /// Appends to the end of its chain.
    case addRule(TableName, Rule)
    case addSet(TableName, SetSpec)
    case addElements(TableName, set: String, [SetElement])
    case deleteElements(TableName, set: String, [SetElement])
}

/// The kernel's nf_tables as plain values. `KernelNFTables` talks to the kernel; `FakeNFTables`
/// keeps tables in memory and answers with the kernel's own errors.
public protocol NFTablesHandle: AnyObject {
    /// Everything in one table; nil when the table does not exist.
    func table(_ name: TableName) throws -> TableSnapshot?
    /// One transaction: every operation takes effect, or none does and the error says which failed.
    func commit(_ operations: [NFTOperation]) throws
}
