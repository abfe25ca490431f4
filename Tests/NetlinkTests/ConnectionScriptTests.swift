import Testing
@testable import Netlink

/// `NetlinkConnection`'s request, batch and dump logic against replies scripted byte by byte:
/// which replies belong to a request, which request a failure belongs to, how a dump ends, and
/// what lost or unreadable replies do to the call and to the socket after it.
@Suite struct ConnectionScriptTests {
    let socket = ScriptedSocket()

    func connection() throws -> NetlinkConnection {
        try NetlinkConnection(socket: socket, receiveBuffer: 1 << 20, sendBuffer: 1 << 16)
    }

    func request(_ connection: NetlinkConnection, _ operation: String = "get thing") throws -> [NetlinkMessage] {
        try connection.request(operation: operation) { batch, seq in
            encodeRequest(batch, seq, flags: NetlinkFlags.request | NetlinkFlags.ack)
        }
    }

    func dump(_ connection: NetlinkConnection, _ operation: String = "list things",
              body: (NetlinkMessage) throws -> Void = { _ in }) throws -> [UInt32] {
        var values: [UInt32] = []
        try connection.dump(operation: operation, build: { batch, seq in
            encodeRequest(batch, seq, flags: NetlinkFlags.request | NetlinkFlags.dump)
        }) { message in
            values.append(message.value ?? 0)
            try body(message)
        }
        return values
    }

    /// Runs `perform` over requests whose attribute is their index; `respond` answers one send.
    func perform(_ connection: NetlinkConnection, count: Int, ackMode: NetlinkConnection.AckMode,
                 batchLimit: Int = 64 * 1024) throws -> [Int: NetlinkError] {
        try connection.perform(count: count, ackMode: ackMode, batchLimit: batchLimit,
                               operation: { "operation \($0)" },
                               encode: { index, batch, seq, flags in encodeRequest(batch, seq, flags: flags, value: UInt32(index)) })
    }

    /// Answers a batch as the kernel does: an error ack for each request `fails` names (by its
    /// index attribute), a success ack for each other one that asked for an ack.
    static func kernel(failing fails: [UInt32: Errno]) -> ([NetlinkMessage]) -> [ScriptedSocket.Step] {
        { messages in
            let acks = messages.compactMap { message -> [UInt8]? in
                if let errno = fails[message.value ?? 0] { return Reply.ack(message.sequence, errno) }
                return message.flags & UInt16(NetlinkFlags.ack) != 0 ? Reply.ack(message.sequence) : nil
            }
            return acks.isEmpty ? [] : [.datagrams(acks)]  // every ack its own datagram, all queued at once
        }
    }

    // MARK: requests and acks

    @Test func aRequestReturnsItsRepliesUpToItsAck() throws {
        socket.respond = { [Reply.data($0[0].sequence, value: 7, flags: 0) + Reply.ack($0[0].sequence)].map { .datagrams([$0]) } }
        let connection = try connection()
        #expect(try request(connection).map(\.value) == [7])
        #expect(socket.sent.count == 1)
        #expect(socket.sent[0].map(\.sequence) == [100])
        #expect(socket.bufferSizes?.receive == 1 << 20)
        #expect(socket.isDrained)
    }

    @Test func aRefusalThrowsTheKernelsErrnoNamingTheOperation() throws {
        socket.respond = { [.datagrams([Reply.ack($0[0].sequence, .fileExists)])] }
        #expect(throws: NetlinkError(errno: .fileExists, operation: "add thing")) {
            try request(connection(), "add thing")
        }
    }

    /// Replies to earlier requests (another sequence number), and a message addressed to another
    /// port, are not this request's answer: the wait goes on to its own ack.
    @Test func repliesToOtherSequencesOrPortsArePassedOver() throws {
        socket.respond = { messages in
            let seq = messages[0].sequence
            return [
                .datagrams([Reply.ack(seq &- 1, .fileExists), Reply.data(seq &+ 5, value: 1, flags: 0)]),
                .datagrams([Reply.ack(seq, .noSuchProcess, portID: 0x999)]),
                .datagrams([Reply.data(seq, value: 9, flags: 0), Reply.ack(seq)]),
            ]
        }
        #expect(try request(connection()).map(\.value) == [9])
        #expect(socket.isDrained)
    }

    /// A signal that interrupts sendmsg or recvmmsg is no failure: the call is made again, and the
    /// request goes out once.
    @Test func anInterruptedSendOrReceiveIsMadeAgain() throws {
        socket.sendFailures = [.interrupted, .interrupted]
        socket.respond = { [.failure(.interrupted), .datagrams([Reply.ack($0[0].sequence)])] }
        let connection = try connection()
        #expect(try request(connection).isEmpty)
        #expect(socket.sent.count == 1)
        #expect(connection.sends == 3)
        #expect(connection.receives == 2)
    }

    @Test func otherSendFailuresAreThrownNotRetried() throws {
        socket.sendFailures = [.notPermitted]
        #expect(throws: NetlinkError(errno: .notPermitted, operation: "add thing")) {
            try request(connection(), "add thing")
        }
        #expect(socket.sent.isEmpty)
        #expect(socket.receiveCalls.isEmpty)
    }

    /// ENOBUFS: some reply was dropped, perhaps this request's ack; whether it ran is unknown. What
    /// is still queued is read and passed over, so the next request finds only its own replies.
    @Test func lostRepliesToARequestAreReportedAndTheSocketDrained() throws {
        socket.respond = { [.failure(.noBufferSpace), .datagrams([Reply.ack($0[0].sequence, .fileExists)])] }
        let connection = try connection()
        #expect(throws: NetlinkError(errno: .noBufferSpace, operation: "flush (kernel state unknown)")) {
            try request(connection, "flush")
        }
        #expect(socket.isDrained)
        #expect(socket.receiveCalls.map(\.wait) == [true, false, false])
        socket.respond = { [.datagrams([Reply.ack($0[0].sequence)])] }
        #expect(try request(connection).isEmpty)
    }

    /// A datagram whose last header claims more bytes than arrived: what it held (maybe the ack)
    /// is unknown, so the request fails EPROTO instead of waiting for an ack that may be gone.
    @Test func aTruncatedDatagramIsReportedNotWaitedPast() throws {
        socket.respond = { messages in
            let ack = Reply.ack(messages[0].sequence)
            return [.datagrams([Reply.data(messages[0].sequence, value: 1, flags: 0) + ack.prefix(20)])]
        }
        #expect(throws: NetlinkError(errno: .protocolError,
                                     operation: "get thing: a reply of 48 bytes ends inside a message (20 bytes left over) (kernel state unknown)")) {
            try request(connection())
        }
        #expect(socket.isDrained)
    }

    // MARK: batches

    /// Only the last request of a send asks for an ack; failures come back on their own, and each
    /// names the request its sequence number belongs to.
    @Test func batchFailuresMapToTheirRequestIndex() throws {
        socket.respond = Self.kernel(failing: [1: .fileExists, 3: .noSuchProcess])
        let failures = try perform(connection(), count: 5, ackMode: .lastOfBatch)
        #expect(failures == [
            1: NetlinkError(errno: .fileExists, operation: "operation 1"),
            3: NetlinkError(errno: .noSuchProcess, operation: "operation 3"),
        ])
        #expect(socket.sent.count == 1)
        #expect(socket.sent[0].map { $0.flags & UInt16(NetlinkFlags.ack) != 0 } == [false, false, false, false, true])
        #expect(socket.sent[0].map(\.sequence) == [100, 101, 102, 103, 104])
        #expect(socket.isDrained)
    }

    /// A failing last request is the batch's final answer too.
    @Test func everyRequestAckedAndTheLastFailing() throws {
        socket.respond = Self.kernel(failing: [0: .invalidArgument, 3: .outOfRange])
        let failures = try perform(connection(), count: 4, ackMode: .everyRequest)
        #expect(failures.mapValues(\.errno) == [0: .invalidArgument, 3: .outOfRange])
        #expect(socket.sent[0].allSatisfy { $0.flags & UInt16(NetlinkFlags.ack) != 0 })
    }

    /// Requests spread over several sends: each send's sequence numbers start afresh, and a
    /// failure in the second send still names its own request.
    @Test func failuresInLaterSendsMapToTheirRequestIndex() throws {
        socket.respond = Self.kernel(failing: [4: .noSuchFileOrDirectory, 6: .fileExists])
        // A request is 28 bytes: three fill a 64-byte batch.
        let failures = try perform(connection(), count: 7, ackMode: .lastOfBatch, batchLimit: 64)
        #expect(failures.mapValues(\.errno) == [4: .noSuchFileOrDirectory, 6: .fileExists])
        #expect(failures[4]?.operation == "operation 4")
        #expect(socket.sent.map { $0.map { $0.value ?? 99 } } == [[0, 1, 2], [3, 4, 5], [6]])
    }

    /// Acks outside the batch's sequence numbers (a late answer to an earlier request, or one
    /// beyond the batch) are no failure of this batch.
    @Test func acksOutsideTheBatchArePassedOver() throws {
        socket.respond = { messages in
            let first = messages[0].sequence, last = messages[messages.count - 1].sequence
            return [.datagrams([Reply.ack(first &- 1, .fileExists), Reply.ack(last &+ 1, .fileExists), Reply.ack(last)])]
        }
        #expect(try perform(connection(), count: 3, ackMode: .lastOfBatch).isEmpty)
    }

    /// ENOBUFS while reading acks: which requests ran is unknown. The acks still queued are read
    /// (the failures among them are not trusted to be all), and the call throws.
    @Test(arguments: [true, false])
    func lostAcksThrowAfterDrainingTheRest(finalAckSurvived: Bool) throws {
        socket.respond = { messages in
            var rest = [Reply.ack(messages[1].sequence, .fileExists)]
            if finalAckSurvived { rest.append(Reply.ack(messages[2].sequence)) }
            return [.failure(.noBufferSpace), .datagrams(rest)]
        }
        let connection = try connection()
        #expect(throws: NetlinkError(errno: .noBufferSpace, operation: "read acks of requests 1…3 (kernel state unknown)")) {
            try perform(connection, count: 3, ackMode: .lastOfBatch)
        }
        #expect(socket.isDrained)
        #expect(socket.receiveCalls.map(\.wait) == (finalAckSurvived ? [true, false] : [true, false, false]))
        socket.respond = Self.kernel(failing: [1: .noSuchProcess])
        #expect(try perform(connection, count: 2, ackMode: .lastOfBatch).mapValues(\.errno) == [1: .noSuchProcess])
    }

    @Test func aTruncatedAckDatagramFailsTheBatch() throws {
        socket.respond = { messages in [.datagrams([Array(Reply.ack(messages[1].sequence).prefix(10))])] }
        #expect {
            try perform(connection(), count: 2, ackMode: .lastOfBatch)
        } throws: { error in
            (error as? NetlinkError)?.errno == .protocolError
        }
        #expect(socket.isDrained)
    }

    // MARK: transactions

    @Test func aTransactionReportsEachRefusalBySequenceUpToTheLastAck() throws {
        socket.respond = { messages in
            let s = messages.map(\.sequence)
            return [.datagrams([Reply.ack(s[0] &- 1, .fileExists), Reply.ack(s[1], .noSuchFileOrDirectory),
                                Reply.ack(s[2], .fileExists), Reply.ack(s[3])])]
        }
        let connection = try connection()
        let batch = MessageBatch()
        let first = socket.reserveSequences(4)
        for i in 0..<4 { encodeRequest(batch, first &+ UInt32(i), flags: NetlinkFlags.request) }
        let failures = try connection.transact(batch, firstSequence: first, lastSequence: first &+ 3, operation: "commit")
        #expect(failures.map(\.sequence) == [first &+ 1, first &+ 2])
        #expect(failures.map(\.errno) == [.noSuchFileOrDirectory, .fileExists])
    }

    // MARK: dumps

    /// NLM_F_MULTI messages over several datagrams, other sequences' messages among them, up to
    /// NLMSG_DONE in a datagram of its own.
    @Test func aMultipartDumpIsReadUpToDone() throws {
        socket.respond = { messages in
            let seq = messages[0].sequence
            return [
                .datagrams([Reply.data(seq, value: 1) + Reply.data(seq, value: 2)]),
                .datagrams([Reply.data(seq &- 1, value: 99), Reply.data(seq, value: 3)]),
                .datagrams([Reply.done(seq)]),
            ]
        }
        #expect(try dump(connection()) == [1, 2, 3])
        #expect(socket.sent[0][0].flags & UInt16(NetlinkFlags.dump) == UInt16(NetlinkFlags.dump))
        #expect(socket.isDrained)
    }

    /// A dump that fails part way ends with NLMSG_DONE carrying the negated errno: an error, not a
    /// short list.
    @Test func anErrorInsideADumpIsThrown() throws {
        socket.respond = { messages in
            let seq = messages[0].sequence
            return [.datagrams([Reply.data(seq, value: 1)]), .datagrams([Reply.done(seq, .messageTooLong)])]
        }
        var seen: [UInt32] = []
        #expect(throws: NetlinkError(errno: .messageTooLong, operation: "list things")) {
            try dump(connection()) { seen.append($0.value ?? 0) }
        }
        #expect(seen == [1])
    }

    /// A dump the kernel refuses to start (a second dump on the socket: EBUSY) answers one error ack.
    @Test func aRefusedDumpThrows() throws {
        socket.respond = { [.datagrams([Reply.ack($0[0].sequence, .resourceBusy)])] }
        #expect(throws: NetlinkError(errno: .resourceBusy, operation: "list things")) {
            try dump(connection())
        }
    }

    /// NLM_F_DUMP_INTR: the table changed while it was dumped, so entries may be missing or doubled.
    /// The dump is read to its end, then EINTR says to read it again.
    @Test func anInterruptedDumpIsReadToItsEndThenReported() throws {
        socket.respond = { messages in
            let seq = messages[0].sequence
            return [
                .datagrams([Reply.data(seq, value: 1)]),
                .datagrams([Reply.data(seq, value: 2, flags: Reply.multi | Reply.dumpInterrupted)]),
                .datagrams([Reply.done(seq, flags: Reply.multi | Reply.dumpInterrupted)]),
            ]
        }
        var seen: [UInt32] = []
        #expect {
            try dump(connection()) { seen.append($0.value ?? 0) }
        } throws: { error in
            (error as? NetlinkError)?.errno == .interrupted
                && (error as? NetlinkError)?.operation == "list things: the table changed during the dump (read it again)"
        }
        #expect(seen == [1, 2])
        #expect(socket.isDrained)
    }

    struct Refused: Error, Equatable {}

    /// When the caller's handler fails, the rest of the dump is still read (the kernel would refuse
    /// the socket's next dump EBUSY while this one runs), then the handler's error is thrown.
    @Test func aFailingHandlerStillReadsTheDumpToItsEnd() throws {
        socket.respond = { messages in
            let seq = messages[0].sequence, base = messages[0].value ?? 0
            return [
                .datagrams([Reply.data(seq, value: base + 1), Reply.data(seq, value: base + 2)]),
                .datagrams([Reply.data(seq, value: base + 3)]),
                .datagrams([Reply.done(seq)]),
            ]
        }
        let connection = try connection()
        var calls = 0
        #expect(throws: Refused()) {
            try dump(connection) { _ in calls += 1; throw Refused() }
        }
        #expect(calls == 1)
        #expect(socket.isDrained)
        #expect(try dump(connection) == [1, 2, 3])
    }

    /// ENOBUFS or an unreadable datagram during a dump: the list may be incomplete. What is queued
    /// is read and passed over, and the error says to read again; the next dump works.
    @Test(arguments: [Errno.noBufferSpace, .protocolError])
    func aDumpThatLostRepliesIsReportedAndTheSocketDrained(errno: Errno) throws {
        var dumps = 0
        socket.respond = { messages in
            dumps += 1
            let seq = messages[0].sequence
            guard dumps == 1 else { return [.datagrams([Reply.data(seq, value: 5), Reply.done(seq)])] }
            let failure: ScriptedSocket.Step = errno == .noBufferSpace
                ? .failure(.noBufferSpace)
                : .datagrams([Reply.data(seq, value: 2) + Reply.data(seq, value: 3).prefix(12)])
            return [.datagrams([Reply.data(seq, value: 1)]), failure, .datagrams([Reply.data(seq, value: 4)]), .datagrams([Reply.done(seq)])]
        }
        let connection = try connection()
        #expect {
            try dump(connection)
        } throws: { error in
            (error as? NetlinkError)?.errno == errno && (error as? NetlinkError)?.operation.hasSuffix("(read it again)") == true
        }
        #expect(socket.isDrained)
        #expect(try dump(connection) == [5])
    }
}

@Suite struct SequenceCounterTests {
    @Test func runsAreConsecutiveAndNeverWrap() {
        var counter = SequenceCounter(next: 10)
        #expect(counter.reserve(3) == 10)
        #expect(counter.reserve(1) == 13)
        var high = SequenceCounter(next: UInt32.max - 2)
        #expect(high.reserve(3) == UInt32.max - 2, "the run ends on the last number")
        #expect(high.reserve(1) == 1, "0 is skipped")
        var late = SequenceCounter(next: UInt32.max - 2)
        #expect(late.reserve(4) == 1, "a run that would wrap starts again at 1")
        #expect(late.reserve(1) == 5)
        #expect(SequenceCounter(next: 0).next == 1)
    }
}

@Suite struct DatagramSplitTests {
    @Test func countsTheBytesAfterTheLastWholeMessage() {
        let ack = Reply.ack(7)
        #expect(NetlinkMessage.split(ack).leftover == 0)
        #expect(NetlinkMessage.split(ack + ack.prefix(20)).leftover == 20)
        #expect(NetlinkMessage.split(ack + ack.prefix(12)).leftover == 12, "less than a header")
        #expect(NetlinkMessage.split(ack + ack.prefix(20)).messages.map(\.sequence) == [7])
        // The last message's padding may be left off.
        let odd = Reply.message(type: 0x24, sequence: 3, payload: [1, 2, 3, 4, 5])
        #expect(NetlinkMessage.split(Array(odd.prefix(21))).leftover == 0)
        #expect(NetlinkMessage.split(Array(odd.prefix(21))).messages.map(\.payloadCount) == [5])
    }
}
