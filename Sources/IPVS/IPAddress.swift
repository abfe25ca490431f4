import Netlink

/// An IPv4 or IPv6 address. Stored inline (no heap allocation): tables of 100,000s of real
/// servers are built, hashed and compared on every sync.
public struct IPAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    public enum Family: UInt16, Sendable {
        case inet = 2  // AF_INET
        case inet6 = 10  // AF_INET6
    }

    public let family: Family
    /// The address bytes in network order, packed big-endian: IPv4 in the top 32 bits of `high`.
    public let high: UInt64
    public let low: UInt64

    public init(family: Family, high: UInt64, low: UInt64) {
        self.family = family
        self.high = family == .inet ? high & 0xffff_ffff_0000_0000 : high
        self.low = family == .inet ? 0 : low
    }

    /// From network-order bytes: at least 4 for IPv4, 16 for IPv6 (extra bytes are ignored).
    public init?(family: Family, bytes: some Collection<UInt8>) {
        guard bytes.count >= (family == .inet ? 4 : 16) else { return nil }
        var high: UInt64 = 0, low: UInt64 = 0
        for (i, byte) in bytes.prefix(family == .inet ? 4 : 16).enumerated() {
            if i < 8 { high |= UInt64(byte) << (56 - 8 * i) } else { low |= UInt64(byte) << (56 - 8 * (i - 8)) }
        }
        self.init(family: family, high: high, low: low)
    }

    /// Parses dotted-quad IPv4 or textual IPv6 (no brackets, no zone).
    public init?(_ text: String) {
        self.init(text[...])
    }

    public init?(_ text: Substring) {
        if text.utf8.contains(UInt8(ascii: ":")) {
            guard let bytes = LibC.ipv6Bytes(String(text)) else { return nil }
            self.init(family: .inet6, bytes: bytes)
        } else {
            guard let v4 = Self.parseIPv4(text.utf8) else { return nil }
            self.init(family: .inet, high: UInt64(v4) << 32, low: 0)
        }
    }

    /// Strict dotted quad: four decimal numbers 0…255, no leading zeros beyond a single 0.
    public static func parseIPv4(_ utf8: some Collection<UInt8>) -> UInt32? {
        var result: UInt32 = 0
        var octet: UInt32 = 0
        var digits = 0
        var dots = 0
        for c in utf8 {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                if digits > 0 && octet == 0 { return nil }  // "01" is octal to some parsers: refuse it
                octet = octet * 10 + UInt32(c - UInt8(ascii: "0"))
                digits += 1
                guard digits <= 3, octet <= 255 else { return nil }
            case UInt8(ascii: "."):
                guard digits > 0, dots < 3 else { return nil }
                result = result << 8 | octet
                octet = 0
                digits = 0
                dots += 1
            default:
                return nil
            }
        }
        guard digits > 0, dots == 3 else { return nil }
        return result << 8 | octet
    }

    public var isIPv4: Bool { family == .inet }

    /// Network-order bytes: 4 for IPv4, 16 for IPv6.
    public var bytes: [UInt8] {
        let count = isIPv4 ? 4 : 16
        return (0..<count).map { i in UInt8(truncatingIfNeeded: (i < 8 ? high >> (56 - 8 * i) : low >> (56 - 8 * (i - 8)))) }
    }

    /// Canonical text: dotted quad, or RFC 5952 IPv6 (as `inet_ntop` prints it).
    public var description: String {
        if isIPv4 {
            let v = UInt32(truncatingIfNeeded: high >> 32)
            return "\(v >> 24).\(v >> 16 & 0xff).\(v >> 8 & 0xff).\(v & 0xff)"
        }
        return LibC.ipv6Text(bytes) ?? "?"
    }

    public static func < (a: IPAddress, b: IPAddress) -> Bool {
        (a.family.rawValue, a.high, a.low) < (b.family.rawValue, b.high, b.low)
    }
}
