import Foundation

/// JSON documents from the API server, decoded by Foundation's `JSONDecoder` within `TextLimits`.
/// `JSONDecoder` scans the whole text once and decodes only what is asked of it; what it would
/// let through is checked first, in one pass over the bytes: nesting (it stops only at 512
/// levels), control characters in strings and invalid UTF-8 (it finds them only in the strings
/// it decodes).
public enum JSONText {
    /// `T` decoded from `text` of at most `limit` bytes. A text that is not JSON, or not within
    /// the limits, is a `TextError`; what `T` throws is thrown as it is.
    public static func decode<T: DecodableWithConfiguration>(
        _: T.Type, from text: String, limit: Int, configuration: T.DecodingConfiguration
    ) throws -> T {
        var text = text
        text.makeContiguousUTF8()
        try check(text.utf8.span, limit: limit)
        return try decode(T.self, checked: Data(text.utf8), configuration: configuration)
    }

    /// The same from bytes, which must be UTF-8.
    public static func decode<T: DecodableWithConfiguration>(
        _: T.Type, from bytes: Data, limit: Int, configuration: T.DecodingConfiguration
    ) throws -> T {
        let span = bytes.span
        do {
            _ = try UTF8Span(validating: span)
        } catch {
            throw TextError("not UTF-8 text (at byte \(error.byteOffsets.lowerBound))")
        }
        try check(span, limit: limit)
        return try decode(T.self, checked: bytes, configuration: configuration)
    }

    private static func decode<T: DecodableWithConfiguration>(
        _: T.Type, checked bytes: Data, configuration: T.DecodingConfiguration
    ) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: bytes, configuration: configuration)
        } catch DecodingError.dataCorrupted(let context) where context.codingPath.isEmpty {
            // The scan of the whole text, before any of T is decoded.
            throw TextError(describeInvalid(bytes))
        }
    }

    /// Size, nesting, and control characters in strings (JSON wants them escaped).
    static func check(_ bytes: Span<UInt8>, limit: Int) throws(TextError) {
        guard bytes.count <= limit else {
            throw TextError("is \(bytes.count) bytes; JSON over \(limit >> 20) MiB is refused")
        }
        var depth = 0
        var inString = false
        var escaped = false
        for offset in bytes.indices {
            let byte = bytes[offset]
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                } else if byte < 0x20 {
                    throw TextError("invalid JSON: byte \(offset): control character 0x\(String(byte, radix: 16)) in a string")
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""):
                inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                if depth > TextLimits.depth { throw TextError("nested deeper than \(TextLimits.depth) levels (at byte \(offset))") }
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1  // unbalanced: the parser's to report
            default:
                break
            }
        }
    }

    /// `JSONDecoder` says only that a text is not JSON; `JSONSerialization` also says where.
    private static func describeInvalid(_ bytes: Data) -> String {
        do {
            _ = try JSONSerialization.jsonObject(with: bytes, options: .fragmentsAllowed)
        } catch {
            let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
            return "invalid JSON: \(Excerpt.text(detail))"
        }
        return "invalid JSON"
    }
}
