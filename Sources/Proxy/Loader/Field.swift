import IPVS
import Yams

/// A problem with one field, before it is attributed to an object and a source.
struct FieldError: Error, CustomStringConvertible {
    var path: String
    var message: String

    var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

/// A YAML node with the path that led to it, so that every error names the field.
/// Reads values strictly as the Kubernetes API would: quoted numbers are strings.
struct Field {
    let node: Node
    let path: String

    init(_ node: Node, path: String = "") {
        self.node = node
        self.path = path
    }

    func error(_ message: String) -> FieldError { FieldError(path: path, message: message) }

    var isNull: Bool {
        node.null != nil
    }

    /// The value under `key`; nil when absent or null, as the API treats both.
    func optional(_ key: String) throws -> Field? {
        guard case .mapping(let mapping) = node else { throw error("expected an object") }
        // Compared as text: Yams' own lookup resolves every key's tag on the way.
        guard let value = mapping.first(where: { $0.key.scalar?.string == key })?.value else { return nil }
        let child = Field(value, path: path.isEmpty ? key : "\(path).\(key)")
        return child.isNull ? nil : child
    }

    func required(_ key: String) throws -> Field {
        guard let child = try optional(key) else {
            throw FieldError(path: path.isEmpty ? key : "\(path).\(key)", message: "missing")
        }
        return child
    }

    func string() throws -> String {
        guard case .scalar(let s) = node else { throw error("expected a string") }
        return s.string
    }

    func int() throws -> Int {
        guard case .scalar(let s) = node, s.style == .plain, let value = Int(s.string) else {
            throw error("expected an integer, got \(shortText)")
        }
        return value
    }

    func bool() throws -> Bool {
        if case .scalar(let s) = node, s.style == .plain {
            switch s.string.lowercased() {
            case "true", "yes", "on": return true
            case "false", "no", "off": return false
            default: break
            }
        }
        throw error("expected true or false, got \(shortText)")
    }

    func list() throws -> [Field] {
        guard case .sequence(let sequence) = node else { throw error("expected a list") }
        return sequence.enumerated().map { Field($1, path: "\(path)[\($0)]") }
    }

    /// Labels and annotations.
    func stringMap() throws -> [String: String] {
        guard case .mapping(let mapping) = node else { throw error("expected an object") }
        var out: [String: String] = [:]
        for (key, value) in mapping {
            guard case .scalar(let k) = key else { throw error("expected string keys") }
            let field = Field(value, path: "\(path).\(Excerpt.text(k.string))")
            out[k.string] = field.isNull ? "" : try field.string()
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

    /// `line 12`, for objects that have no usable name.
    var location: String? { node.mark.map { "line \($0.line)" } }

    private var shortText: String {
        switch node {
        case .scalar(let s): s.style == .plain ? Excerpt.text(s.string) : Excerpt.quoted(s.string)
        case .mapping: "an object"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }
}
