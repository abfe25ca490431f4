/// A bound netlink socket as `NetlinkConnection` uses it: datagrams out and in, the port the kernel
/// answers to, sequence numbers and buffer sizes. `MnlSocket` is the kernel's (libmnl); tests put a
/// scripted one under a connection to run its request, ack and dump logic against chosen replies.
public protocol NetlinkSocket: AnyObject {
    /// The port id the kernel addresses its replies to (`nlmsg_pid` of a reply).
    var portID: UInt32 { get }

    /// `count` consecutive sequence numbers; the run never wraps.
    func reserveSequences(_ count: Int) -> UInt32

    /// Sends the finished messages of `batch` as one datagram. One attempt: EINTR is thrown, and
    /// the connection sends again.
    func send(_ batch: MessageBatch, operation: String) throws(NetlinkError)

    /// With `wait`, blocks until a datagram is queued; returns it and every datagram queued after
    /// it, whole and in order of arrival. Without `wait`, returns what is queued now, possibly
    /// nothing. ENOBUFS: the kernel dropped datagrams for lack of receive buffer. EINTR may be
    /// thrown; the connection receives again.
    func receive(operation: String, wait: Bool) throws(NetlinkError) -> [[UInt8]]

    /// Sizes both socket buffers; the receive buffer must hold every ack of one send.
    func setBufferSizes(receive: Int, send: Int) throws(NetlinkError)

    /// Sizes the send buffer alone, at least to `bytes`: a larger datagram fails EMSGSIZE.
    func setSendBuffer(_ bytes: Int) throws(NetlinkError)
}

/// Sequence numbers handed out in consecutive runs. A run never wraps past `UInt32.max`, so
/// `base &+ i` names message `i` of a batch and an offset from `base` orders replies.
public struct SequenceCounter: Sendable {
    public private(set) var next: UInt32

    public init(next: UInt32) {
        self.next = next == 0 ? 1 : next
    }

    public mutating func reserve(_ count: Int) -> UInt32 {
        let run = UInt32(clamping: max(count, 1))
        if UInt32.max - next < run - 1 { next = 1 }  // restart rather than wrap inside the run
        let first = next
        next &+= run
        if next == 0 { next = 1 }  // 0 is the kernel's own (notifications)
        return first
    }
}

extension NetlinkMessage {
    /// `sizeof(struct nlmsghdr)`, asserted in the CMnl shim.
    static let headerLength = 16

    /// The messages of one datagram; a truncated last message is left out (see `split`).
    public static func messages(inDatagram datagram: [UInt8]) -> [NetlinkMessage] {
        split(datagram).messages
    }

    /// The messages of one datagram and the bytes after the last whole one: nonzero when a header
    /// claims more than the datagram holds, or the datagram ends inside a header.
    /// Walks the headers in Swift rather than with `mnl_nlmsg_ok`, which takes a length of 2 GiB or
    /// more for a negative one and lets the walk run off the datagram.
    public static func split(_ datagram: [UInt8]) -> (messages: [NetlinkMessage], leftover: Int) {
        func u16(_ at: Int) -> UInt16 { UInt16(datagram[at]) | UInt16(datagram[at + 1]) << 8 }
        func u32(_ at: Int) -> UInt32 { UInt32(u16(at)) | UInt32(u16(at + 2)) << 16 }
        var messages: [NetlinkMessage] = []
        var at = 0
        while datagram.count - at >= headerLength {
            let length = Int(u32(at))
            guard length >= headerLength, length <= datagram.count - at else { break }
            messages.append(NetlinkMessage(type: u16(at + 4), flags: u16(at + 6), sequence: u32(at + 8), portID: u32(at + 12),
                                           buffer: datagram, payloadRange: (at + headerLength)..<(at + length)))
            at = min(at + ((length + 3) & ~3), datagram.count)  // the last message's padding may be absent
        }
        return (messages, datagram.count - at)
    }
}
