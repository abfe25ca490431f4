/// One netlink message as received: the header fields and the bytes after the 16-byte header.
public struct NetlinkMessage: Sendable {
    public let type: UInt16
    public let flags: UInt16
    public let sequence: UInt32
    public let portID: UInt32
    /// Everything after `nlmsghdr`.
    public let payload: [UInt8]

    public init(type: UInt16, flags: UInt16, sequence: UInt32, portID: UInt32, payload: [UInt8]) {
        self.type = type
        self.flags = flags
        self.sequence = sequence
        self.portID = portID
        self.payload = payload
    }

    public static let error: UInt16 = 2  // NLMSG_ERROR
    public static let done: UInt16 = 3  // NLMSG_DONE

    public var isError: Bool { type == Self.error }
    public var isDone: Bool { type == Self.done }

    /// For NLMSG_ERROR: 0 for an ack, else the positive errno.
    public var errorCode: Int32 {
        guard payload.count >= 4 else { return 0 }
        let raw = Int32(bitPattern: UInt32(payload[0]) | UInt32(payload[1]) << 8 | UInt32(payload[2]) << 16 | UInt32(payload[3]) << 24)
        return -raw
    }

    /// For generic netlink: the command byte of `genlmsghdr`.
    public var genericCommand: UInt8 { payload.first ?? 0 }

    /// For generic netlink: the attributes after the 4-byte `genlmsghdr`.
    public var genericAttributes: Attributes { Attributes(parsing: payload, from: 4) }
}

/// The attributes of one level of a message, read by type. Values are copied out on access.
public struct Attributes: Sendable {
    public struct Entry: Sendable {
        public let type: UInt16
        public let range: Range<Int>
    }

    let bytes: [UInt8]
    public let entries: [Entry]

    init(bytes: [UInt8], entries: [Entry]) {
        self.bytes = bytes
        self.entries = entries
    }

    /// Walks TLVs from `offset`; a truncated trailing attribute ends the walk.
    public init(parsing bytes: [UInt8], from offset: Int) {
        self.bytes = bytes
        self.entries = Attributes.walk(bytes, from: offset, to: bytes.count)
    }

    static func walk(_ bytes: [UInt8], from start: Int, to end: Int) -> [Entry] {
        var entries: [Entry] = []
        var at = start
        while at + 4 <= end {
            let length = Int(UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8)
            let type = (UInt16(bytes[at + 2]) | UInt16(bytes[at + 3]) << 8) & 0x3fff  // NLA_TYPE_MASK
            guard length >= 4, at + length <= end else { break }
            entries.append(Entry(type: type, range: (at + 4)..<(at + length)))
            at += (length + 3) & ~3
        }
        return entries
    }

    public func contains(_ type: Int) -> Bool { entries.contains { Int($0.type) == type } }

    func range(_ type: Int) -> Range<Int>? { entries.first { Int($0.type) == type }?.range }

    public func bytes(_ type: Int) -> [UInt8]? { range(type).map { Array(bytes[$0]) } }

    public func u8(_ type: Int) -> UInt8? {
        guard let r = range(type), r.count >= 1 else { return nil }
        return bytes[r.lowerBound]
    }

    public func u16(_ type: Int) -> UInt16? {
        guard let r = range(type), r.count >= 2 else { return nil }
        return UInt16(bytes[r.lowerBound]) | UInt16(bytes[r.lowerBound + 1]) << 8
    }

    /// A 16-bit value sent in network order (ports).
    public func be16(_ type: Int) -> UInt16? { u16(type).map { UInt16(bigEndian: $0) } }

    public func u32(_ type: Int) -> UInt32? {
        guard let r = range(type), r.count >= 4 else { return nil }
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(bytes[r.lowerBound + i]) << (8 * i) }
        return v
    }

    public func u64(_ type: Int) -> UInt64? {
        guard let r = range(type), r.count >= 8 else { return nil }
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(bytes[r.lowerBound + i]) << (8 * i) }
        return v
    }

    /// A NUL-terminated string attribute, without its NUL.
    public func string(_ type: Int) -> String? {
        guard let r = range(type) else { return nil }
        var slice = bytes[r]
        if let nul = slice.firstIndex(of: 0) { slice = slice[..<nul] }
        return String(decoding: slice, as: UTF8.self)
    }

    public func nested(_ type: Int) -> Attributes? {
        guard let r = range(type) else { return nil }
        return Attributes(bytes: bytes, entries: Attributes.walk(bytes, from: r.lowerBound, to: r.upperBound))
    }
}
