import IPVS
import Yams

/// A problem with one field, before it is attributed to an object and a source.
struct FieldError: Error, CustomStringConvertible {
    var path: String
    var message: String

    var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

/// A YAML node or a JSON value, with the path that led to it, so that every error names the field.
/// Reads values strictly as the Kubernetes API would: in YAML quoted numbers are strings; in JSON
/// a string is a string and a number a number.
struct Field {
    enum Value {
        case yaml(Node)
        case json(JSONValue)
    }

    let value: Value
    let path: String

    init(_ node: Node, path: String = "") {
        self.value = .yaml(node)
        self.path = path
    }

    /// The JSON value `decoder` is at; `decoder` is one of Foundation's `JSONDecoder`.
    init(json decoder: any Decoder, path: String = "") {
        self.init(json: JSONValue(decoder), path: path)
    }

    private init(json value: JSONValue, path: String) {
        self.value = .json(value)
        self.path = path
    }

    /// The YAML node; nil for JSON.
    var node: Node? {
        guard case .yaml(let node) = value else { return nil }
        return node
    }

    func error(_ message: String) -> FieldError { FieldError(path: path, message: message) }

    var isNull: Bool {
        switch value {
        case .yaml(let node): node.null != nil
        case .json(let value): value.isNull
        }
    }

    /// The value under `key`; nil when absent or null, as the API treats both.
    func optional(_ key: String) throws -> Field? {
        let childPath = path.isEmpty ? key : "\(path).\(key)"
        let child: Field
        switch value {
        case .yaml(let node):
            guard case .mapping(let mapping) = node else { throw error("expected an object") }
            // Compared as text: Yams' own lookup resolves every key's tag on the way.
            guard let value = mapping.first(where: { $0.key.scalar?.string == key })?.value else { return nil }
            child = Field(value, path: childPath)
        case .json(let value):
            switch value.member(key) {
            case .value(let member): child = Field(json: member, path: childPath)
            case .absent: return nil
            case .notAnObject: throw error("expected an object")
            }
        }
        return child.isNull ? nil : child
    }

    func required(_ key: String) throws -> Field {
        guard let child = try optional(key) else {
            throw FieldError(path: path.isEmpty ? key : "\(path).\(key)", message: "missing")
        }
        return child
    }

    func string() throws -> String {
        switch value {
        case .yaml(let node):
            guard case .scalar(let s) = node else { throw error("expected a string") }
            return s.string
        case .json(let value):
            guard let string = value.string else {
                throw error(value.kind == .invalidString ? "a string with an escape that names no character" : "expected a string")
            }
            return string
        }
    }

    func int() throws -> Int {
        switch value {
        case .yaml(let node):
            guard case .scalar(let s) = node, s.style == .plain, let value = Int(s.string) else {
                throw error("expected an integer, got \(shortText)")
            }
            return value
        case .json(let value):
            guard let int = value.int else { throw error("expected an integer, got \(shortText)") }
            return int
        }
    }

    func bool() throws -> Bool {
        switch value {
        case .yaml(let node):
            if case .scalar(let s) = node, s.style == .plain {
                switch s.string.lowercased() {
                case "true", "yes", "on": return true
                case "false", "no", "off": return false
                default: break
                }
            }
        case .json(let value):
            if let bool = value.bool { return bool }
        }
        throw error("expected true or false, got \(shortText)")
    }

    func list() throws -> [Field] {
        switch value {
        case .yaml(let node):
            guard case .sequence(let sequence) = node else { throw error("expected a list") }
            return sequence.enumerated().map { Field($1, path: "\(path)[\($0)]") }
        case .json(let value):
            guard let elements = value.elements else { throw error("expected a list") }
            return elements.enumerated().map { Field(json: $1, path: "\(path)[\($0)]") }
        }
    }

    /// Labels and annotations.
    func stringMap() throws -> [String: String] {
        var out: [String: String] = [:]
        switch value {
        case .yaml(let node):
            guard case .mapping(let mapping) = node else { throw error("expected an object") }
            for (key, value) in mapping {
                guard case .scalar(let k) = key else { throw error("expected string keys") }
                let field = Field(value, path: "\(path).\(Excerpt.text(k.string))")
                out[k.string] = field.isNull ? "" : try field.string()
            }
        case .json(let value):
            guard let names = value.memberNames else { throw error("expected an object") }
            var bad: [(name: String, value: JSONValue)] = []
            for name in names {
                guard case .value(let member) = value.member(name) else { continue }
                if member.isNull {
                    out[name] = ""
                } else if let string = member.string {
                    out[name] = string
                } else {
                    bad.append((name, member))
                }
            }
            // Members come in no particular order: of several bad ones, the first by name is reported.
            if let first = bad.min(by: { $0.name < $1.name }) {
                _ = try Field(json: first.value, path: "\(path).\(Excerpt.text(first.name))").string()  // throws: no string
            }
        }
        return out
    }

    /// One of the raw values of `E`, matched exactly as the API does.
    func oneOf<E: RawRepresentable & CaseIterable>(_: E.Type) throws -> E where E.RawValue == String {
        let text = try string()
        guard let value = E(rawValue: text) else {
            let allowed = E.allCases.map(\.rawValue).joined(separator: ", ")
            throw error("unknown value \(Excerpt.quoted(text)) (expected one of \(allowed))")
        }
        return value
    }

    func ipAddress() throws -> IPAddress {
        let text = try string()
        guard let address = IPAddress(text) else { throw error("invalid IP address \(Excerpt.quoted(text))") }
        return address
    }

    /// `10.0.0.0/8`; surrounding spaces are allowed, as the API server trims them.
    func cidr() throws -> CIDR {
        let text = try string()
        guard let cidr = CIDR(text.trimmingCharacters(in: .whitespaces)) else { throw error("invalid CIDR \(Excerpt.quoted(text))") }
        return cidr
    }

    /// A port number, 1-65535.
    func port() throws -> UInt16 {
        let value = try int()
        guard (1...65535).contains(value) else { throw error("\(value) is out of range 1-65535") }
        return UInt16(value)
    }

    func ipProtocol() throws -> IPProtocol {
        let text = try string()
        guard let value = IPProtocol.allCases.first(where: { $0.description == text }) else {
            throw error("unknown protocol \(Excerpt.quoted(text)) (expected TCP, UDP or SCTP)")
        }
        return value
    }

    /// `line 12`, for objects that have no usable name; nil for JSON, which the API server sends.
    var location: String? { node?.mark.map { "line \($0.line)" } }

    private var shortText: String {
        switch value {
        case .yaml(.scalar(let s)): s.style == .plain ? Excerpt.text(s.string) : Excerpt.quoted(s.string)
        case .yaml(.mapping): "an object"
        case .yaml(.sequence): "a list"
        case .yaml(.alias): "an alias"
        case .json(let value): value.shortText
        }
    }
}
