/// The API server's rules for the names kipvs reads (k8s.io/apimachinery/pkg/util/validation),
/// so that a manifest the API server would refuse is refused here too, naming the field.
enum NameRule {
    /// At most 63 of a-z, 0-9 and `-`, starting and ending with a letter or digit: namespaces,
    /// Service and port names. (Service names are RFC 1035 labels unless the API server relaxes
    /// them to RFC 1123 ones, which may start with a digit; the wider rule refuses nothing it accepts.)
    case dns1123Label
    /// Labels joined by dots, at most 253 characters: EndpointSlice names.
    case dns1123Subdomain
    /// IANA_SVC_NAME (RFC 6335): at most 15 of a-z, 0-9 and `-`, at least one letter, no `-` at
    /// either end or twice in a row: the container port a `targetPort` names.
    case ianaServiceName

    /// Why `name` breaks the rule; nil when it keeps it.
    func problem(with name: String) -> String? {
        let bytes = Array(name.utf8)
        switch self {
        case .dns1123Label:
            if bytes.count > 63 { return "is longer than 63 characters" }
            return Self.isLabel(bytes[...]) ? nil
                : "must be a-z, 0-9 and '-', starting and ending with a letter or digit (a DNS-1123 label)"
        case .dns1123Subdomain:
            if bytes.count > 253 { return "is longer than 253 characters" }
            let valid = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false).allSatisfy(Self.isLabel)
            return valid ? nil
                : "must be dot-separated parts of a-z, 0-9 and '-', each starting and ending with a letter or digit (a DNS-1123 subdomain)"
        case .ianaServiceName:
            if bytes.count > 15 { return "is longer than 15 characters" }
            guard Self.isLabel(bytes[...]), bytes.contains(where: Self.isLetter) else {
                return "must be a-z, 0-9 and '-' with at least one letter, starting and ending with a letter or digit (an IANA service name)"
            }
            return name.contains("--") ? "must not contain '--' (an IANA service name)" : nil
        }
    }

    private static func isLabel(_ bytes: ArraySlice<UInt8>) -> Bool {
        guard let first = bytes.first, let last = bytes.last, isAlphanumeric(first), isAlphanumeric(last) else { return false }
        return bytes.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: "-") }
    }

    private static func isLetter(_ byte: UInt8) -> Bool { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        isLetter(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}

extension Field {
    /// A string that must keep `rule`; empty only when `allowEmpty`.
    func name(_ rule: NameRule, allowEmpty: Bool = false) throws -> String {
        let text = try string()
        if text.isEmpty {
            if allowEmpty { return text }
            throw error("empty")
        }
        if let problem = rule.problem(with: text) { throw error("\(Excerpt.quoted(text)) \(problem)") }
        return text
    }
}
