import Netlink

/// Reads and writes `/proc/sys` entries.
public enum Sysctl {
    public struct Failure: ErrnoCarrying, Hashable, Sendable, CustomStringConvertible {
        public let key: String
        public let errno: Errno
        /// `read` or `write`.
        public let operation: String

        public var description: String { "\(operation) sysctl \(key): \(errno) (\(errno.name))" }
    }

    static func path(_ key: String) -> String { "/proc/sys/" + String(key.map { $0 == "." ? "/" : $0 }) }

    /// The entry's first line without surrounding white space; nil when the kernel has no such
    /// entry (the module that adds it is not loaded).
    public static func read(_ key: String) throws(Failure) -> String? {
        let bytes: [UInt8]
        do {
            bytes = try LibC.readFile(path(key), limit: 4096)
        } catch where error.errno == .noSuchFileOrDirectory {
            return nil
        } catch {
            throw Failure(key: key, errno: error.errno, operation: "read")
        }
        let line = bytes.prefix { $0 != UInt8(ascii: "\n") }
        let isSpace = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r") }
        return String(decoding: line.drop(while: isSpace).reversed().drop(while: isSpace).reversed(), as: UTF8.self)
    }

    /// Writes `value` unless the entry already holds it; returns whether it changed anything.
    @discardableResult
    public static func ensure(_ key: String, _ value: String) throws(Failure) -> Bool {
        if try read(key) == value { return false }
        do {
            try LibC.writeFile(path(key), Array((value + "\n").utf8))
        } catch {
            throw Failure(key: key, errno: error.errno, operation: "write")
        }
        return true
    }
}
