/// Input quoted in a message: control characters escaped and at most `limit` characters kept, so
/// that a log record stays one readable line whatever the input held (binary, newlines, 100 MB).
public enum Excerpt {
    /// The most characters of input a message quotes.
    public static let limit = 200

    /// The text with control characters escaped, cut to `limit` characters; a cut says how long
    /// the whole was: `abc… (10000 bytes)`.
    public static func text(_ text: some StringProtocol, limit: Int = limit) -> String {
        let (shown, cut) = escape(text.unicodeScalars, limit: limit)
        return cut ? "\(shown)… (\(text.utf8.count) bytes)" : shown
    }

    /// The same in double quotes: `"abc"`, `"abc…" (10000 bytes)`.
    public static func quoted(_ text: some StringProtocol, limit: Int = limit) -> String {
        let (shown, cut) = escape(text.unicodeScalars, limit: limit)
        return cut ? "\"\(shown)…\" (\(text.utf8.count) bytes)" : "\"\(shown)\""
    }

    /// Bytes that should be text (an HTTP body): invalid UTF-8 shows as U+FFFD, the rest as `text`.
    public static func bytes(_ bytes: some Collection<UInt8>, limit: Int = limit) -> String {
        // A character is at most 4 bytes: decoding more than that is wasted on a large body.
        let head = String(decoding: bytes.prefix(limit * 4), as: UTF8.self)
        let (shown, cut) = escape(head.unicodeScalars, limit: limit)
        return cut || bytes.count > limit * 4 ? "\(shown)… (\(bytes.count) bytes)" : shown
    }

    private static func escape(_ scalars: some Sequence<Unicode.Scalar>, limit: Int) -> (String, cut: Bool) {
        var out = ""
        var kept = 0
        for scalar in scalars {
            if kept == limit { return (out, true) }
            out += escaped(scalar)
            kept += 1
        }
        return (out, false)
    }

    private static func escaped(_ scalar: Unicode.Scalar) -> String {
        switch scalar {
        case "\n": return "\\n"
        case "\r": return "\\r"
        case "\t": return "\\t"
        case "\"": return "\\\""
        case "\\": return "\\\\"
        default: break
        }
        // C0 and C1 controls, DEL, and the separators and direction marks that can rewrite a line.
        let value = scalar.value
        if value < 0x20 || (0x7F...0x9F).contains(value) || value == 0x2028 || value == 0x2029
            || (0x202A...0x202E).contains(value) || (0x2066...0x2069).contains(value) {
            return "\\u{\(String(value, radix: 16))}"
        }
        return String(scalar)
    }
}
