import IPVS
import NFTables

/// nf_tables operations in `nft` notation, one per line, for `kipvs plan` and `kipvs status --sets`.
public enum PacketFilterFormat {
    /// The sets of every ruleset: their definitions do not depend on the configuration.
    static let specs: [String: SetSpec] = Dictionary(Ruleset(PacketFilterConfig()).sets.map { ($0.name, $0) },
                                                      uniquingKeysWith: { first, _ in first })

    public static func commands(_ operations: [NFTOperation]) -> String {
        operations.map(command).joined(separator: "\n")
    }

    public static func command(_ operation: NFTOperation) -> String {
        switch operation {
        case .addTable(let table): "add table \(table)"
        case .deleteTable(let table): "delete table \(table)"
        case .addChain(let table, let chain): "add chain \(table) \(chain.name)" + hook(chain.hook)
        case .addSet(let table, let spec): "add \(spec.data == nil ? "set" : "map") \(table) \(spec.name) { \(type(spec)) }"
        case .addRule(let table, let rule):
            "add rule \(table) \(rule.chain) (\(rule.expressions.count) expressions)" + (rule.comment.map { " comment \"\($0)\"" } ?? "")
        case .addElements(let table, let set, let elements):
            "add element \(table) \(set) { \(elements.map { element($0, in: set) }.joined(separator: ", ")) }"
        case .deleteElements(let table, let set, let elements):
            "delete element \(table) \(set) { \(elements.map { element($0, in: set) }.joined(separator: ", ")) }"
        }
    }

    static func hook(_ hook: ChainHook?) -> String {
        guard let hook else { return "" }
        return " { type \(hook.type.rawValue) hook \(hook.hook) priority \(hook.priority); }"
    }

    static func type(_ spec: SetSpec) -> String {
        "type " + spec.key.map(typeName).joined(separator: " . ") + (spec.data.map { " : " + typeName($0) } ?? "")
            + (spec.interval ? "; flags interval;" : ";")
    }

    public static func typeName(_ field: SetField) -> String {
        switch field {
        case .verdict: "verdict"
        case .ipv4Address: "ipv4_addr"
        case .ipv6Address: "ipv6_addr"
        case .inetProtocol: "inet_proto"
        case .inetService: "inet_service"
        case .mark: "mark"
        }
    }

    /// `10.96.0.10 . tcp . 80`, `… . 10.0.0.0-10.255.255.255`, `… : 0x0b012345`.
    public static func element(_ element: SetElement, in set: String) -> String {
        guard let spec = specs[set] else { return element.key.map { String($0, radix: 16) }.joined() }
        let start = fields(element.key, spec.key)
        var text: String
        if let end = element.keyEnd.map({ fields($0, spec.key) }) {
            text = zip(start, end).map { $0 == $1 ? $0 : "\($0)-\($1)" }.joined(separator: " . ")
        } else {
            text = start.joined(separator: " . ")
        }
        if let data = element.data, let type = spec.data { text += " : " + value(data[...], type) }
        return text
    }

    static func fields(_ bytes: [UInt8], _ types: [SetField]) -> [String] {
        var offset = 0
        return types.map { type in
            defer { offset += type.paddedLength }
            guard offset + type.length <= bytes.count else { return "?" }
            return value(bytes[offset..<(offset + type.length)], type)
        }
    }

    static func value(_ bytes: ArraySlice<UInt8>, _ type: SetField) -> String {
        let b = Array(bytes)
        switch type {
        case .ipv4Address: return IPAddress(family: .inet, bytes: b).map(\.description) ?? "?"
        case .ipv6Address: return IPAddress(family: .inet6, bytes: b).map(\.description) ?? "?"
        case .inetProtocol:
            guard let number = b.first else { return "?" }
            return IPProtocol(rawValue: UInt16(number)).map { $0.description.lowercased() } ?? "\(number)"
        case .inetService:
            guard b.count >= 2 else { return "?" }
            return "\(UInt16(b[0]) << 8 | UInt16(b[1]))"
        case .mark, .verdict:
            guard b.count >= 4 else { return "?" }
            let value = UInt32(littleEndian: (0..<4).reduce(0) { $0 | UInt32(b[$1]) << (8 * $1) })  // host order
            let hex = String(value, radix: 16)
            return "0x" + String(repeating: "0", count: max(0, 8 - hex.count)) + hex
        }
    }
}
