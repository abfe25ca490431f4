import Testing
@testable import Netlink

/// A `NetlinkSocket` that answers from a script: each send may queue replies (built from the
/// requests it carried), and each receive hands out the next queued step, a few datagrams or an
/// errno. A receive that would wait on an empty queue records an issue and fails ETIMEDOUT, so a
/// connection that waits for a reply that never comes fails the test instead of hanging it.
final class ScriptedSocket: NetlinkSocket {
    enum Step {
        case datagrams([[UInt8]])
        case failure(Errno)
    }

    let portID: UInt32 = 0x4242
    private var sequences: SequenceCounter
    /// What receive hands out, in order.
    var queue: [Step] = []
    /// Errnos the next sends fail with, one per send, before any is delivered.
    var sendFailures: [Errno] = []
    /// Each delivered send, split into its messages.
    private(set) var sent: [[NetlinkMessage]] = []
    /// Answers a delivered send with steps appended to the queue.
    var respond: ([NetlinkMessage]) -> [Step] = { _ in [] }
    private(set) var receiveCalls: [(wait: Bool, queued: Int)] = []
    private(set) var bufferSizes: (receive: Int, send: Int)?

    init(firstSequence: UInt32 = 100) {
        sequences = SequenceCounter(next: firstSequence)
    }

    func reserveSequences(_ count: Int) -> UInt32 { sequences.reserve(count) }

    func send(_ batch: MessageBatch, operation: String) throws(NetlinkError) {
        if !sendFailures.isEmpty { throw NetlinkError(errno: sendFailures.removeFirst(), operation: operation) }
        let messages = NetlinkMessage.messages(inDatagram: batch.bytes)
        sent.append(messages)
        queue += respond(messages)
    }

    func receive(operation: String, wait: Bool) throws(NetlinkError) -> [[UInt8]] {
        receiveCalls.append((wait, queue.count))
        guard !queue.isEmpty else {
            if wait {
                Issue.record("\(operation): waited for a reply the script does not hold")
                throw NetlinkError(errno: .timedOut, operation: "\(operation): script exhausted")
            }
            return []
        }
        switch queue.removeFirst() {
        case .datagrams(let datagrams): return datagrams
        case .failure(let errno): throw NetlinkError(errno: errno, operation: operation)
        }
    }

    func setBufferSizes(receive: Int, send: Int) throws(NetlinkError) { bufferSizes = (receive, send) }

    func setSendBuffer(_ bytes: Int) throws(NetlinkError) { bufferSizes?.send = bytes }

    var isDrained: Bool { queue.isEmpty }
}

/// Replies as the kernel words them (little-endian host).
enum Reply {
    static let multi: UInt16 = 0x2  // NLM_F_MULTI
    static let dumpInterrupted: UInt16 = 0x10  // NLM_F_DUMP_INTR
    static let capped: UInt16 = 0x100  // NLM_F_CAPPED: the request is not echoed

    static func le32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
    static func le16(_ value: UInt16) -> [UInt8] { [UInt8(value & 0xff), UInt8(value >> 8)] }

    /// `nlmsghdr` + payload, padded to 4 bytes.
    static func message(type: UInt16, flags: UInt16 = 0, sequence: UInt32, portID: UInt32 = 0x4242, payload: [UInt8]) -> [UInt8] {
        let length = UInt32(16 + payload.count)
        var bytes = le32(length) + le16(type) + le16(flags) + le32(sequence) + le32(portID) + payload
        while bytes.count % 4 != 0 { bytes.append(0) }
        return bytes
    }

    /// NLMSG_ERROR: `int error` (0 or -errno) and the request's header (NETLINK_CAP_ACK: no payload echo).
    static func ack(_ sequence: UInt32, _ errno: Errno? = nil, portID: UInt32 = 0x4242) -> [UInt8] {
        let code = UInt32(bitPattern: 0 &- (errno?.rawValue ?? 0))
        let echoed = le32(16) + le16(0x24) + le16(0x05) + le32(sequence) + le32(0)
        return message(type: NetlinkMessage.error, flags: capped, sequence: sequence, portID: portID, payload: le32(code) + echoed)
    }

    /// NLMSG_DONE: `int` 0, or the negated errno a dump ended with.
    static func done(_ sequence: UInt32, _ errno: Errno? = nil, flags: UInt16 = multi) -> [UInt8] {
        message(type: NetlinkMessage.done, flags: flags, sequence: sequence, payload: le32(UInt32(bitPattern: 0 &- (errno?.rawValue ?? 0))))
    }

    /// A generic-netlink data message (family 0x24, cmd 1) with one u32 attribute (type 1) = `value`.
    static func data(_ sequence: UInt32, value: UInt32, flags: UInt16 = multi) -> [UInt8] {
        message(type: 0x24, flags: flags, sequence: sequence, payload: [1, 1, 0, 0] + le16(8) + le16(1) + le32(value))
    }
}

extension NetlinkMessage {
    /// The u32 attribute `Reply.data` carries.
    var value: UInt32? { genericAttributes.u32(1) }
}

/// Builds one generic-netlink request (family 0x24, cmd 1) carrying `value` as its u32 attribute 1.
func encodeRequest(_ batch: MessageBatch, _ sequence: UInt32, flags: Int32, value: UInt32 = 0) {
    batch.beginGeneric(family: 0x24, flags: flags, sequence: sequence, command: 1)
    batch.put(1, u32: value)
    batch.end()
}
