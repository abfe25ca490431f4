import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reads and writes `/proc/sys` entries.
public enum Sysctl {
    public struct Failure: Error, CustomStringConvertible {
        public let key: String
        public let errno: Int32
        public var description: String { "sysctl \(key): \(String(cString: strerror(errno)))" }
    }

    static func path(_ key: String) -> String { "/proc/sys/" + key.replacingOccurrences(of: ".", with: "/") }

    public static func read(_ key: String) -> String? {
        guard let file = fopen(path(key), "r") else { return nil }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 256)
        guard fgets(&buffer, Int32(buffer.count), file) != nil else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Writes `value` unless the entry already holds it; returns whether it changed anything.
    @discardableResult
    public static func ensure(_ key: String, _ value: String) throws -> Bool {
        if read(key) == value { return false }
        guard let file = fopen(path(key), "w") else { throw Failure(key: key, errno: errno) }
        defer { fclose(file) }
        guard fputs(value + "\n", file) >= 0, fflush(file) == 0 else { throw Failure(key: key, errno: errno) }
        return true
    }
}
