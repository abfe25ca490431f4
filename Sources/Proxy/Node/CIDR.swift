import IPVS

/// An address prefix such as `10.0.0.0/8` or `fd00::/64`.
public struct CIDR: Hashable, Sendable, CustomStringConvertible {
    /// The network address, host bits cleared.
    public let address: IPAddress
    public let prefixLength: Int

    /// Parses `address/length`; host bits are cleared, as Go's `net.ParseCIDR` does.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPAddress(String(parts[0])),
              let length = Int(parts[1]), (0...address.bytes.count * 8).contains(length)
        else { return nil }
        self.init(address: address, prefixLength: length)
    }

    public init(address: IPAddress, prefixLength: Int) {
        precondition((0...address.bytes.count * 8).contains(prefixLength), "prefix length out of range")
        self.address = Self.masked(address, prefixLength)
        self.prefixLength = prefixLength
    }

    public func contains(_ other: IPAddress) -> Bool {
        other.family == address.family && Self.masked(other, prefixLength) == address
    }

    public var description: String { "\(address)/\(prefixLength)" }

    private static func masked(_ address: IPAddress, _ length: Int) -> IPAddress {
        let bytes = address.bytes.enumerated().map { index, byte -> UInt8 in
            let bitsKept = min(max(length - index * 8, 0), 8)
            return bitsKept == 0 ? 0 : byte & ~UInt8(0xff >> bitsKept)
        }
        return IPAddress(family: address.family, bytes: bytes)!
    }
}
