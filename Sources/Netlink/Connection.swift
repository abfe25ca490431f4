/// Request/ack, dumps and batches over one netlink socket. Not thread-safe: one caller at a time.
public final class NetlinkConnection {
    public let socket: NetlinkSocket
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

    public init(protocol netlinkProtocol: Int32, receiveBuffer: Int = 8 << 20, sendBuffer: Int = 1 << 20) throws {
        socket = try NetlinkSocket(protocol: netlinkProtocol)
        // All acks of one send are queued before sendmsg returns: the buffer must hold them all.
        try socket.setBufferSizes(receive: receiveBuffer, send: sendBuffer)
        sendBufferSize = sendBuffer
    }

    /// One request with NLM_F_ACK; returns the data messages that answered it.
    public func request(operation: String, build: (MessageBatch, UInt32) -> Void) throws -> [NetlinkMessage] {
        let batch = single
        batch.reset()
        let sequence = socket.reserveSequences(1)
        build(batch, sequence)
        try send(batch, operation: operation)
        var replies: [NetlinkMessage] = []
        while true {
            for message in try receive(operation: operation) where message.sequence == sequence {
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
    public func dump(operation: String, build: (MessageBatch, UInt32) -> Void, body: (NetlinkMessage) throws -> Void) throws {
        let batch = single
        batch.reset()
        let sequence = socket.reserveSequences(1)
        build(batch, sequence)
        try send(batch, operation: operation)
        while true {
            for message in try receive(operation: operation) where message.sequence == sequence {
                if message.isDone { return }
                if message.isError {
                    if let errno = message.errorCode { throw NetlinkError(errno: errno, operation: operation) }
                    continue
                }
                try body(message)
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
            } catch let error as NetlinkError where error.errno == .noBufferSpace {
                // The kernel answered the whole batch inside sendmsg: what was not dropped is queued.
                // Drain it, so that later requests on this socket find their own replies.
                while try !receive(operation: operation, wait: false).isEmpty {}
                throw NetlinkError(errno: .noBufferSpace, operation: "\(operation): replies lost (kernel state unknown)")
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
        var lost = false
        var finished = false
        while !finished {
            let messages: [NetlinkMessage]
            do {
                // After a loss the final ack may be gone too; the rest is already queued, so drain it.
                messages = try receive(operation: "read acks", wait: !lost)
            } catch let error as NetlinkError where error.errno == .noBufferSpace {
                lost = true
                continue
            }
            if lost && messages.isEmpty { break }
            for message in messages where message.isError {
                let offset = message.sequence &- base
                guard offset <= last &- base else { continue }  // a stray reply from an earlier request
                if let errno = message.errorCode {
                    failures[first + Int(offset)] = NetlinkError(errno: errno, operation: operation(first + Int(offset)))
                }
                if message.sequence == last { finished = true }
            }
        }
        if lost {
            throw NetlinkError(errno: .noBufferSpace, operation: "read acks of requests \(first + 1)…\(first + Int(last &- base) + 1) (kernel state unknown)")
        }
    }

    private func send(_ batch: MessageBatch, operation: String) throws {
        sends += 1
        try socket.send(batch, operation: operation)
    }

    private func receive(operation: String, wait: Bool = true) throws -> [NetlinkMessage] {
        receives += 1
        return try socket.receive(operation: operation, wait: wait)
    }
}
