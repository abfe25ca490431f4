/// One netlink message as received: the header fields and the bytes after the 16-byte header.
/// Messages of one datagram share its buffer; nothing is copied per message.
public struct NetlinkMessage: Sendable {
    public let type: UInt16
    public let flags: UInt16
    public let sequence: UInt32
    public let portID: UInt32
    let buffer: [UInt8]
    let payloadRange: Range<Int>

    public init(type: UInt16, flags: UInt16, sequence: UInt32, portID: UInt32, payload: [UInt8]) {
        self.init(type: type, flags: flags, sequence: sequence, portID: portID, buffer: payload, payloadRange: 0..<payload.count)
    }

    init(type: UInt16, flags: UInt16, sequence: UInt32, portID: UInt32, buffer: [UInt8], payloadRange: Range<Int>) {
        self.type = type
        self.flags = flags
        self.sequence = sequence
        self.portID = portID
        self.buffer = buffer
        self.payloadRange = payloadRange
    }

    public static let error: UInt16 = 2  // NLMSG_ERROR
    public static let done: UInt16 = 3  // NLMSG_DONE

    public var isError: Bool { type == Self.error }
    public var isDone: Bool { type == Self.done }

    /// Everything after `nlmsghdr`, copied.
    public var payload: [UInt8] { Array(buffer[payloadRange]) }
    public var payloadCount: Int { payloadRange.count }

    /// The payload byte at `offset`, 0 past the end.
    public func byte(at offset: Int) -> UInt8 {
        offset < payloadRange.count ? buffer[payloadRange.lowerBound + offset] : 0
    }

    /// A little-endian (host order) 32-bit value of the payload at `offset`, 0 past the end.
    public func u32(at offset: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 | UInt32(byte(at: offset + $1)) << (8 * $1) }
    }

    /// For NLMSG_ERROR: nil for an ack, else the errno the kernel answered (sent negated).
    /// Wrapping: negating INT32_MIN, which no kernel sends, must not trap.
    public var errorCode: Errno? {
        let code = 0 &- Int32(bitPattern: u32(at: 0))
        return code == 0 ? nil : Errno(rawValue: code)
    }

    /// For generic netlink: the command byte of `genlmsghdr`.
    public var genericCommand: UInt8 { byte(at: 0) }

    /// For generic netlink: the attributes after the 4-byte `genlmsghdr`.
    public var genericAttributes: Attributes { attributes(from: 4) }

    /// The attributes after a fixed header of `offset` bytes.
    public func attributes(from offset: Int) -> Attributes {
        Attributes(bytes: buffer, range: min(payloadRange.lowerBound + offset, payloadRange.upperBound)..<payloadRange.upperBound)
    }
}

/// The attributes of one level of a message, read by type. Lookups walk the TLVs in place:
/// a level holds a dozen attributes at most, and walking allocates nothing.
public struct Attributes: Sendable {
    public struct Entry: Sendable {
        public let type: UInt16
        public let range: Range<Int>
    }

    let bytes: [UInt8]
    let range: Range<Int>

    init(bytes: [UInt8], range: Range<Int>) {
        self.bytes = bytes
        self.range = range
    }

    /// Walks TLVs from `offset`; a truncated trailing attribute ends the walk.
    public init(parsing bytes: [UInt8], from offset: Int) {
        self.init(bytes: bytes, range: min(offset, bytes.count)..<bytes.count)
    }

    /// Calls `body` with each attribute's type and payload range until it returns false.
    func forEach(_ body: (UInt16, Range<Int>) -> Bool) {
        var at = range.lowerBound
        let end = range.upperBound
        while at + 4 <= end {
            let length = Int(UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8)
            let type = (UInt16(bytes[at + 2]) | UInt16(bytes[at + 3]) << 8) & 0x3fff  // NLA_TYPE_MASK
            guard length >= 4, at + length <= end else { return }
            if !body(type, (at + 4)..<(at + length)) { return }
            at += (length + 3) & ~3
        }
    }

    public var entries: [Entry] {
        var out: [Entry] = []
        forEach { out.append(Entry(type: $0, range: $1)); return true }
        return out
    }

    func find(_ type: Int) -> Range<Int>? {
        var found: Range<Int>?
        forEach { t, r in
            if Int(t) == type { found = r; return false }
            return true
        }
        return found
    }

    public func bytes(_ type: Int) -> ArraySlice<UInt8>? { find(type).map { bytes[$0] } }

    public func u8(_ type: Int) -> UInt8? {
        guard let r = find(type), r.count >= 1 else { return nil }
        return bytes[r.lowerBound]
    }

    public func u16(_ type: Int) -> UInt16? {
        guard let r = find(type), r.count >= 2 else { return nil }
        return UInt16(bytes[r.lowerBound]) | UInt16(bytes[r.lowerBound + 1]) << 8
    }

    /// A 16-bit value sent in network order (ports).
    public func be16(_ type: Int) -> UInt16? { u16(type).map { UInt16(bigEndian: $0) } }

    public func u32(_ type: Int) -> UInt32? {
        guard let r = find(type), r.count >= 4 else { return nil }
        return (0..<4).reduce(0) { $0 | UInt32(bytes[r.lowerBound + $1]) << (8 * $1) }
    }

    public func u64(_ type: Int) -> UInt64? {
        guard let r = find(type), r.count >= 8 else { return nil }
        return (0..<8).reduce(0) { $0 | UInt64(bytes[r.lowerBound + $1]) << (8 * $1) }
    }

    /// A NUL-terminated string attribute, without its NUL.
    public func string(_ type: Int) -> String? {
        guard let r = find(type) else { return nil }
        var slice = bytes[r]
        if let nul = slice.firstIndex(of: 0) { slice = slice[..<nul] }
        return String(decoding: slice, as: UTF8.self)
    }

    public func nested(_ type: Int) -> Attributes? {
        find(type).map { Attributes(bytes: bytes, range: $0) }
    }
}
