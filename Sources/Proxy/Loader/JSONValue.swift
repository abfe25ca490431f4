/// A value in a JSON document, read through the `Decoder` of Foundation's `JSONDecoder` only
/// as `Field` asks for it: the members kipvs never reads (managedFields, a Service's selector)
/// are scanned once by the decoder and never turned into strings or numbers.
final class JSONValue {
    private let decoder: any Decoder
    /// The object's members, looked up once: each lookup of a container lists every member.
    private var cachedMembers: KeyedDecodingContainer<JSONKey>??

    init(_ decoder: any Decoder) {
        self.decoder = decoder
    }

    enum Kind {
        case null, bool, number, string, list, object
        /// A string whose escapes name no character (a lone surrogate, `\x`).
        case invalidString
    }

    var isNull: Bool {
        // The decoder is its own single-value container: asking for it cannot fail.
        (try? decoder.singleValueContainer())?.decodeNil() ?? false
    }

    /// nil when this is not an object.
    private var members: KeyedDecodingContainer<JSONKey>? {
        if let cachedMembers { return cachedMembers }
        // Not an object: nil, and the caller says what it expected.
        let members = try? decoder.container(keyedBy: JSONKey.self)
        cachedMembers = .some(members)
        return members
    }

    var isObject: Bool { members != nil }

    /// The member named `name`; nil when absent. Not an object: `.notAnObject`.
    func member(_ name: String) -> Member {
        guard let members else { return .notAnObject }
        let key = JSONKey(name)
        guard members.contains(key) else { return .absent }
        // A member the container lists always has a decoder.
        guard let child = try? members.superDecoder(forKey: key) else { return .absent }
        return .value(JSONValue(child))
    }

    enum Member {
        case value(JSONValue)
        case absent
        case notAnObject
    }

    /// The object's member names, in no particular order; nil when this is not an object.
    var memberNames: [String]? { members?.allKeys.map(\.stringValue) }

    /// nil when this is not a list.
    var elements: [JSONValue]? {
        // Not a list: nil, and the caller says what it expected.
        guard var list = try? decoder.unkeyedContainer() else { return nil }
        var elements: [JSONValue] = []
        elements.reserveCapacity(list.count ?? 0)
        while !list.isAtEnd {
            // An element the container has not reached yet always has a decoder.
            guard let element = try? list.superDecoder() else { break }
            elements.append(JSONValue(element))
        }
        return elements
    }

    // Each of these is nil for a value of another type, which the caller reports.

    var string: String? { try? decoder.singleValueContainer().decode(String.self) }

    /// Integral numbers only: `80` and `80.0`, not `80.5`, `"80"` or a number beyond `Int`.
    var int: Int? { try? decoder.singleValueContainer().decode(Int.self) }

    /// `true` and `false` only.
    var bool: Bool? { try? decoder.singleValueContainer().decode(Bool.self) }

    private var double: Double? { try? decoder.singleValueContainer().decode(Double.self) }

    /// What this value is, for messages; a probe of each type in turn.
    var kind: Kind {
        if isNull { return .null }
        if isObject { return .object }
        if elements != nil { return .list }
        if bool != nil { return .bool }
        do {
            _ = try decoder.singleValueContainer().decode(String.self)
            return .string
        } catch DecodingError.typeMismatch {
            return .number  // neither null, object, list, bool nor string
        } catch {
            return .invalidString
        }
    }

    /// The value as an error message quotes it: `80`, `"80"`, `an object`.
    var shortText: String {
        switch kind {
        case .null: "null"
        case .bool: bool == true ? "true" : "false"
        case .number: int.map(String.init) ?? double.map { "\($0)" } ?? "a number beyond any Double"
        case .string: Excerpt.quoted(string ?? "")
        case .invalidString: "a string with an invalid escape"
        case .list: "a list"
        case .object: "an object"
        }
    }
}

/// Any member name of a JSON object.
public struct JSONKey: CodingKey, Hashable, Sendable, ExpressibleByStringLiteral {
    public let stringValue: String
    public var intValue: Int? { nil }

    public init(_ name: String) { stringValue = name }
    public init(stringValue: String) { self.stringValue = stringValue }
    public init?(intValue: Int) { nil }
    public init(stringLiteral name: String) { stringValue = name }
}
