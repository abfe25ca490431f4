#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 address, kept as the 16 bytes the kernel uses (`union nf_inet_addr`).
public struct IPAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    public enum Family: UInt16, Sendable {
        case inet = 2  // AF_INET
        case inet6 = 10  // AF_INET6
    }

    public let family: Family
    /// Network-order bytes: 4 for IPv4, 16 for IPv6.
    public let bytes: [UInt8]

    public init?(family: Family, bytes: [UInt8]) {
        switch family {
        case .inet:
            guard bytes.count >= 4 else { return nil }
            self.bytes = Array(bytes.prefix(4))
        case .inet6:
            guard bytes.count >= 16 else { return nil }
            self.bytes = Array(bytes.prefix(16))
        }
        self.family = family
    }

    /// Parses dotted-quad IPv4 or textual IPv6 (no brackets, no zone).
    public init?(_ text: String) {
        if text.contains(":") {
            var a = in6_addr()
            guard inet_pton(AF_INET6, text, &a) == 1 else { return nil }
            self.family = .inet6
            self.bytes = withUnsafeBytes(of: a) { Array($0) }
        } else {
            var a = in_addr()
            guard inet_pton(AF_INET, text, &a) == 1 else { return nil }
            self.family = .inet
            self.bytes = withUnsafeBytes(of: a) { Array($0) }
        }
    }

    public var isIPv4: Bool { family == .inet }

    /// The 16-byte form the kernel's ADDR attributes carry.
    public var kernelBytes: [UInt8] { bytes + [UInt8](repeating: 0, count: 16 - bytes.count) }

    /// Canonical text: dotted quad, or RFC 5952 IPv6 (as `inet_ntop` prints it).
    public var description: String {
        var out = [CChar](repeating: 0, count: 64)
        let af = family == .inet ? AF_INET : AF_INET6
        let ok = bytes.withUnsafeBytes { inet_ntop(af, $0.baseAddress, &out, socklen_t(out.count)) } != nil
        return ok ? String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
    }

    public static func < (a: IPAddress, b: IPAddress) -> Bool {
        if a.family != b.family { return a.family.rawValue < b.family.rawValue }
        return a.bytes.lexicographicallyPrecedes(b.bytes)
    }
}
