/// Request/ack, dumps and batches over one netlink socket. Not thread-safe: one caller at a time.
///
/// A reply belongs to a request when its sequence number is the request's and its port id is this
/// socket's (or 0); anything else is a stray (a late reply to an earlier request) and is passed over.
public final class NetlinkConnection {
    public let socket: any NetlinkSocket
    /// Counters for benchmarks and metrics.
    public private(set) var sends = 0
    public private(set) var receives = 0
    /// Reused for single requests and dumps, which come one at a time.
    private let single = MessageBatch(limit: 16 * 1024)
    /// The send buffer asked for so far; `transact` raises it to fit each batch.
    private var sendBufferSize: Int

    /// How acks are requested in a batch.
    public enum AckMode: Sendable {
        /// Every request carries NLM_F_ACK and gets its own ack.
        case everyRequest
        /// Only the last request of each send asks for an ack; failures still come back one by one,
        /// matched by sequence number, and the final ack says the kernel reached the end.
        case lastOfBatch
    }

    public convenience init(protocol netlinkProtocol: Int32, receiveBuffer: Int = 8 << 20, sendBuffer: Int = 1 << 20) throws {
        try self.init(socket: MnlSocket(protocol: netlinkProtocol), receiveBuffer: receiveBuffer, sendBuffer: sendBuffer)
    }

    public init(socket: any NetlinkSocket, receiveBuffer: Int = 8 << 20, sendBuffer: Int = 1 << 20) throws {
        self.socket = socket
        // All acks of one send are queued before sendmsg returns: the buffer must hold them all.
        try socket.setBufferSizes(receive: receiveBuffer, send: sendBuffer)
        sendBufferSize = sendBuffer
    }

    /// One request with NLM_F_ACK; returns the data messages that answered it. Lost replies
    /// (ENOBUFS) or an unreadable datagram throw after draining what is queued: the outcome is unknown.
    public func request(operation: String, build: (MessageBatch, UInt32) -> Void) throws -> [NetlinkMessage] {
        let batch = single
        batch.reset()
        let sequence = socket.reserveSequences(1)
        build(batch, sequence)
        try send(batch, operation: operation)
        var replies: [NetlinkMessage] = []
        while true {
            let messages: [NetlinkMessage]
            do {
                messages = try receive(operation: operation)
            } catch let error as NetlinkError where Self.lostReplies(error) {
                try drain(operation: operation)
                throw NetlinkError(errno: error.errno, operation: "\(error.operation) (kernel state unknown)")
            }
            for message in messages where message.sequence == sequence {
                if message.isError {
                    if let errno = message.errorCode { throw NetlinkError(errno: errno, operation: operation) }
                    return replies
                }
                replies.append(message)
            }
        }
    }

    /// One dump (NLM_F_DUMP); returns every data message up to NLMSG_DONE.
    public func dump(operation: String, build: (MessageBatch, UInt32) -> Void) throws -> [NetlinkMessage] {
        var replies: [NetlinkMessage] = []
        try dump(operation: operation, build: build) { replies.append($0) }
        return replies
    }

    /// One dump, handing each data message to `body` as it arrives.
    ///
    /// The dump is always read to its NLMSG_DONE before an error is thrown, so the next request on
    /// this socket is not refused EBUSY (the kernel runs one dump per socket) and finds its own
    /// replies: when `body` throws, the rest of the dump is read and passed over. The kernel reports a
    /// dump that failed part way in NLMSG_DONE's payload, and one whose table changed while it ran
    /// with NLM_F_DUMP_INTR (EINTR: read it again). Lost replies (ENOBUFS) and an unreadable datagram
    /// throw after draining what is queued.
    public func dump(operation: String, build: (MessageBatch, UInt32) -> Void, body: (NetlinkMessage) throws -> Void) throws {
        let batch = single
        batch.reset()
        let sequence = socket.reserveSequences(1)
        build(batch, sequence)
        try send(batch, operation: operation)
        var failure: (any Error)?
        var interrupted = false
        while true {
            let messages: [NetlinkMessage]
            do {
                messages = try receive(operation: operation)
            } catch let error as NetlinkError where Self.lostReplies(error) {
                try drain(operation: operation)
                throw NetlinkError(errno: error.errno, operation: "\(error.operation) (read it again)")
            }
            for message in messages where message.sequence == sequence {
                if message.isDone {
                    // A 4-byte int: 0, or the negated errno the dump ended with.
                    if let errno = message.errorCode { throw NetlinkError(errno: errno, operation: operation) }
                    if let failure { throw failure }
                    if interrupted || message.flags & UInt16(NetlinkFlags.dumpInterrupted) != 0 {
                        throw NetlinkError(errno: .interrupted, operation: "\(operation): the table changed during the dump (read it again)")
                    }
                    return
                }
                if message.isError {
                    // The dump did not start (EBUSY, EOPNOTSUPP, ...): nothing follows. An ack is passed over.
                    if let errno = message.errorCode { throw NetlinkError(errno: errno, operation: operation) }
                    continue
                }
                if message.flags & UInt16(NetlinkFlags.dumpInterrupted) != 0 { interrupted = true }
                guard failure == nil else { continue }
                do {
                    try body(message)
                } catch {
                    failure = error
                }
            }
        }
    }

    /// Sends `count` requests packed into as few sends as the batch limit allows and returns the
    /// failures by request index. Throws if the kernel's replies could not all be read (ENOBUFS):
    /// then which requests ran is unknown and the caller must re-read the kernel's state.
    public func perform(
        count: Int,
        ackMode: AckMode = .lastOfBatch,
        batchLimit: Int = 64 * 1024,
        operation: (Int) -> String,
        encode: (_ index: Int, _ batch: MessageBatch, _ sequence: UInt32, _ flags: Int32) -> Void
    ) throws -> [Int: NetlinkError] {
        var failures: [Int: NetlinkError] = [:]
        let batch = MessageBatch(limit: batchLimit)
        let flags = NetlinkFlags.request | (ackMode == .everyRequest ? NetlinkFlags.ack : 0)
        var index = 0
        while index < count {
            batch.reset()
            let first = index
            // Sequence numbers are consecutive from `base`, so a reply's seq names its request.
            let base = socket.reserveSequences(min(count - first, batchLimit / 16))
            while index < count, !batch.isFull, index - first < batchLimit / 16 {
                encode(index, batch, base &+ UInt32(index - first), flags)
                index += 1
            }
            guard !batch.isEmpty else { continue }
            batch.addFlags(NetlinkFlags.ack, toMessage: batch.count - 1)
            let last = base &+ UInt32(index - first - 1)
            try send(batch, operation: operation(first))
            try collectAcks(first: first, base: base, last: last, operation: operation, into: &failures)
        }
        return failures
    }

    /// Sends `batch` whole, in ONE sendmsg, and reads replies until `lastSequence` is acked.
    /// For transactions (nfnetlink batches) that the kernel applies per datagram: the send buffer
    /// is forced up to the batch's size. Returns every nonzero error by sequence number, in order
    /// of arrival; an error on `firstSequence` (the batch header) also ends the wait, since the
    /// kernel then answers nothing else. Lost replies (ENOBUFS) throw: the outcome is unknown.
    public func transact(_ batch: MessageBatch, firstSequence: UInt32, lastSequence: UInt32,
                         operation: String) throws -> [(sequence: UInt32, errno: Errno)] {
        if batch.byteCount > sendBufferSize {
            try socket.setSendBuffer(batch.byteCount)
            sendBufferSize = batch.byteCount
        }
        try send(batch, operation: operation)
        var failures: [(sequence: UInt32, errno: Errno)] = []
        while true {
            let messages: [NetlinkMessage]
            do {
                messages = try receive(operation: operation)
            } catch let error as NetlinkError where Self.lostReplies(error) {
                // The kernel answered the whole batch inside sendmsg: what was not dropped is queued.
                // Drain it, so that later requests on this socket find their own replies.
                try drain(operation: operation)
                throw NetlinkError(errno: error.errno, operation: "\(operation): replies lost (kernel state unknown)")
            }
            for message in messages where message.isError {
                let offset = message.sequence &- firstSequence
                guard offset <= lastSequence &- firstSequence else { continue }  // a stray reply from an earlier request
                if let errno = message.errorCode { failures.append((message.sequence, errno)) }
                if message.sequence == lastSequence || (message.sequence == firstSequence && message.errorCode != nil) {
                    return failures
                }
            }
        }
    }

    private func collectAcks(first: Int, base: UInt32, last: UInt32, operation: (Int) -> String,
                             into failures: inout [Int: NetlinkError]) throws {
        var lost: Errno?
        var finished = false
        while !finished {
            let messages: [NetlinkMessage]
            do {
                // After a loss the final ack may be gone too; the rest is already queued, so drain it.
                messages = try receive(operation: "read acks", wait: lost == nil)
            } catch let error as NetlinkError where Self.lostReplies(error) {
                lost = lost ?? error.errno
                continue
            }
            if lost != nil && messages.isEmpty { break }
            for message in messages where message.isError {
                let offset = message.sequence &- base
                guard offset <= last &- base else { continue }  // a stray reply from an earlier request
                if let errno = message.errorCode {
                    failures[first + Int(offset)] = NetlinkError(errno: errno, operation: operation(first + Int(offset)))
                }
                if message.sequence == last { finished = true }
            }
        }
        if let lost {
            throw NetlinkError(errno: lost, operation: "read acks of requests \(first + 1)…\(first + Int(last &- base) + 1) (kernel state unknown)")
        }
    }

    /// Sends again after EINTR: an interrupted sendmsg sent nothing.
    private func send(_ batch: MessageBatch, operation: String) throws {
        while true {
            sends += 1
            do {
                return try socket.send(batch, operation: operation)
            } catch where error.errno == .interrupted {
                continue
            }
        }
    }

    /// The messages of the datagrams received, this socket's only; receives again after EINTR.
    /// A datagram that ends inside a message throws EPROTO: what it held (maybe an ack) is unknown.
    private func receive(operation: String, wait: Bool = true) throws -> [NetlinkMessage] {
        let datagrams = try receiveDatagrams(operation: operation, wait: wait)
        var messages: [NetlinkMessage] = []
        var unreadable: (bytes: Int, leftover: Int)?
        for datagram in datagrams {
            let split = NetlinkMessage.split(datagram)
            if split.leftover > 0, unreadable == nil { unreadable = (datagram.count, split.leftover) }
            messages += split.messages.filter { $0.portID == 0 || $0.portID == socket.portID }
        }
        if let unreadable {
            throw NetlinkError(errno: .protocolError,
                               operation: "\(operation): a reply of \(unreadable.bytes) bytes ends inside a message (\(unreadable.leftover) bytes left over)")
        }
        return messages
    }

    private func receiveDatagrams(operation: String, wait: Bool) throws(NetlinkError) -> [[UInt8]] {
        while true {
            receives += 1
            do {
                return try socket.receive(operation: operation, wait: wait)
            } catch where error.errno == .interrupted {
                continue
            }
        }
    }

    /// ENOBUFS, or a datagram that could not be read: some reply is gone.
    private static func lostReplies(_ error: NetlinkError) -> Bool {
        error.errno == .noBufferSpace || error.errno == .protocolError
    }

    /// Reads and passes over whatever is queued, without waiting.
    private func drain(operation: String) throws {
        while true {
            do {
                if try receive(operation: operation, wait: false).isEmpty { return }
            } catch let error as NetlinkError where Self.lostReplies(error) {
                continue  // already being reported; what follows is still to be read
            }
        }
    }
}
