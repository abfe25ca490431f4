// Every call into libmnl and every raw pointer of the Netlink module lives in this file.
import CMnl
#if canImport(Glibc)
import Glibc
#endif

/// Netlink messages built back to back in one buffer, ready for a single `sendmsg`.
///
/// Messages are written with libmnl. The buffer is zeroed before reuse because libmnl 1.0.4
/// leaves attribute padding uninitialised, and golden-byte tests want deterministic bytes.
public final class MessageBatch {
    /// A single message never comes near this; it keeps every `_check` put inside the buffer.
    static let headroom = 16 * 1024

    public let limit: Int
    private var capacity: Int
    private var base: UnsafeMutableRawPointer
    private var current: UnsafeMutablePointer<nlmsghdr>?
    private var nests: [UnsafeMutablePointer<nlattr>] = []
    private var overflowed = false

    /// Bytes of finished messages.
    public private(set) var byteCount = 0
    /// Finished messages, and where each starts.
    public private(set) var offsets: [Int] = []
    public var count: Int { offsets.count }
    public var isEmpty: Bool { offsets.isEmpty }
    /// True once the finished messages reach `limit`: time to send.
    public var isFull: Bool { byteCount >= limit }

    public init(limit: Int = 64 * 1024) {
        self.limit = limit
        self.capacity = limit + Self.headroom
        self.base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: capacity)
    }

    deinit { base.deallocate() }

    public func reset() {
        base.initializeMemory(as: UInt8.self, repeating: 0, count: byteCount)
        byteCount = 0
        offsets.removeAll(keepingCapacity: true)
    }

    /// Starts a generic-netlink message: `nlmsghdr` + `genlmsghdr`.
    public func beginGeneric(family: UInt16, flags: Int32, sequence: UInt32, command: UInt8, version: UInt8 = 1) {
        begin(type: family, flags: flags, sequence: sequence)
        guard let nlh = current else { return }
        let genl = mnl_nlmsg_put_extra_header(nlh, MemoryLayout<genlmsghdr>.size)!
            .assumingMemoryBound(to: genlmsghdr.self)
        genl.pointee.cmd = command
        genl.pointee.version = version
    }

    /// Starts a plain netlink message with a fixed family header of `headerBytes` (e.g. `ifinfomsg`).
    public func begin(type: UInt16, flags: Int32, sequence: UInt32, familyHeader headerBytes: [UInt8] = []) {
        precondition(current == nil, "previous message not finished")
        let nlh = mnl_nlmsg_put_header(base + byteCount)!
        nlh.pointee.nlmsg_type = type
        nlh.pointee.nlmsg_flags = UInt16(truncatingIfNeeded: flags)
        nlh.pointee.nlmsg_seq = sequence
        current = nlh
        overflowed = false
        if !headerBytes.isEmpty {
            let extra = mnl_nlmsg_put_extra_header(nlh, headerBytes.count)!
            headerBytes.withUnsafeBytes { extra.copyMemory(from: $0.baseAddress!, byteCount: headerBytes.count) }
        }
    }

    private var room: Int { capacity - byteCount }

    public func put(_ type: Int, u8 value: UInt8) {
        guard let nlh = current else { return }
        if !mnl_attr_put_u8_check(nlh, room, UInt16(type), value) { overflowed = true }
    }

    public func put(_ type: Int, u16 value: UInt16) {
        guard let nlh = current else { return }
        if !mnl_attr_put_u16_check(nlh, room, UInt16(type), value) { overflowed = true }
    }

    /// A 16-bit value in network byte order (ports).
    public func put(_ type: Int, be16 value: UInt16) { put(type, u16: value.bigEndian) }

    public func put(_ type: Int, u32 value: UInt32) {
        guard let nlh = current else { return }
        if !mnl_attr_put_u32_check(nlh, room, UInt16(type), value) { overflowed = true }
    }

    public func put(_ type: Int, bytes: [UInt8]) {
        guard let nlh = current else { return }
        let ok = bytes.withUnsafeBytes { mnl_attr_put_check(nlh, room, UInt16(type), bytes.count, $0.baseAddress) }
        if !ok { overflowed = true }
    }

    /// A NUL-terminated string.
    public func put(_ type: Int, string: String) {
        guard let nlh = current else { return }
        if !mnl_attr_put_strz_check(nlh, room, UInt16(type), string) { overflowed = true }
    }

    public func beginNest(_ type: Int) {
        guard let nlh = current else { return }
        if let nest = mnl_attr_nest_start_check(nlh, room, UInt16(type)) {
            nests.append(nest)
        } else {
            overflowed = true
        }
    }

    public func endNest() {
        guard let nlh = current, let nest = nests.popLast() else { return }
        mnl_attr_nest_end(nlh, nest)
    }

    /// Finishes the message. A message that did not fit is dropped and reported.
    @discardableResult
    public func end() -> Bool {
        guard let nlh = current else { return false }
        current = nil
        nests.removeAll()
        if overflowed { return false }
        offsets.append(byteCount)
        byteCount += Int(cmnl_align(Int32(nlh.pointee.nlmsg_len)))
        return true
    }

    /// Adds flags (e.g. NLM_F_ACK) to an already finished message.
    public func addFlags(_ flags: Int32, toMessage index: Int) {
        let nlh = (base + offsets[index]).assumingMemoryBound(to: nlmsghdr.self)
        nlh.pointee.nlmsg_flags |= UInt16(truncatingIfNeeded: flags)
    }

    /// Appends one message written by another library (e.g. libnftnl) at the end of the buffer.
    /// `write` gets zeroed room for at least `reserving` bytes and returns the message's
    /// `nlmsg_len`; the buffer grows as needed, so one batch can hold a whole transaction.
    public func appendMessage(reserving: Int, _ write: (UnsafeMutableRawPointer) -> Int) {
        precondition(current == nil, "previous message not finished")
        ensureRoom(reserving)
        (base + byteCount).initializeMemory(as: UInt8.self, repeating: 0, count: reserving)  // a dropped message may have left bytes behind
        let length = write(base + byteCount)
        precondition(length >= 16 && length <= reserving, "message of \(length) bytes overran its \(reserving)-byte reservation")
        offsets.append(byteCount)
        byteCount += Int(cmnl_align(Int32(length)))
    }

    /// Grows the buffer (zeroed, like the rest) until `bytes` fit after the finished messages.
    private func ensureRoom(_ bytes: Int) {
        guard byteCount + bytes > capacity else { return }
        var newCapacity = capacity
        while byteCount + bytes > newCapacity { newCapacity *= 2 }
        let grown = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        grown.initializeMemory(as: UInt8.self, repeating: 0, count: newCapacity)
        grown.copyMemory(from: base, byteCount: byteCount)
        base.deallocate()
        base = grown
        capacity = newCapacity
    }

    /// A copy of the finished messages, for tests and debugging.
    public var bytes: [UInt8] { Array(UnsafeRawBufferPointer(start: base, count: byteCount)) }

    fileprivate func withBytes<R, E: Error>(_ body: (UnsafeRawPointer, Int) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawPointer(base), byteCount)
    }
}

/// A bound netlink socket (libmnl `mnl_socket`): the kernel's `NetlinkSocket`.
public final class MnlSocket: NetlinkSocket {
    private let socket: OpaquePointer
    public let portID: UInt32
    private var sequences: SequenceCounter
    /// One receive slot: 32 KiB, as large as a dump chunk can be.
    static let slotSize = 32 * 1024
    static let slots = 16
    private let receiveBuffer: UnsafeMutableRawPointer
    private var lengths = [UInt32](repeating: 0, count: MnlSocket.slots)

    public init(protocol netlinkProtocol: Int32) throws(NetlinkError) {
        let socket = try opening("open netlink socket") { mnl_socket_open(netlinkProtocol) }
        do {
            try retrying("bind netlink socket") { mnl_socket_bind(socket, 0, pid_t(MNL_SOCKET_AUTOPID)) }
        } catch {
            mnl_socket_close(socket)
            throw error
        }
        self.socket = socket
        self.portID = mnl_socket_get_portid(socket)
        self.sequences = SequenceCounter(next: UInt32(truncatingIfNeeded: LibC.secondsSinceEpoch()))
        self.receiveBuffer = UnsafeMutableRawPointer.allocate(byteCount: Self.slotSize * Self.slots, alignment: 16)
        // Report failures with their errno only: no echo of the request, which keeps error acks small.
        try setNetlinkOption(NETLINK_CAP_ACK, "NETLINK_CAP_ACK", 1)
        try setNetlinkOption(NETLINK_EXT_ACK, "NETLINK_EXT_ACK", 1)
    }

    deinit {
        mnl_socket_close(socket)
        receiveBuffer.deallocate()
    }

    private func setNetlinkOption(_ option: Int32, _ name: String, _ value: Int32) throws(NetlinkError) {
        var v = value
        try retrying("set socket option \(name) to \(value)") {
            mnl_socket_setsockopt(socket, option, &v, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    /// Sizes both socket buffers, as `setBuffer` does.
    public func setBufferSizes(receive: Int, send: Int) throws(NetlinkError) {
        try setBuffer(SO_RCVBUFFORCE, "SO_RCVBUFFORCE", else: SO_RCVBUF, "SO_RCVBUF", to: receive)
        try setBuffer(SO_SNDBUFFORCE, "SO_SNDBUFFORCE", else: SO_SNDBUF, "SO_SNDBUF", to: send)
    }

    /// Sizes the send buffer alone, at least to `bytes`: a datagram larger than it fails EMSGSIZE.
    public func setSendBuffer(_ bytes: Int) throws(NetlinkError) {
        try setBuffer(SO_SNDBUFFORCE, "SO_SNDBUFFORCE", else: SO_SNDBUF, "SO_SNDBUF", to: bytes)
    }

    /// FORCE (CAP_NET_ADMIN) passes `rmem_max`/`wmem_max`; without it the plain option is the
    /// fallback, which the kernel caps at that maximum. Fails only when both are refused.
    private func setBuffer(_ force: Int32, _ forceName: String, else plain: Int32, _ plainName: String, to bytes: Int)
        throws(NetlinkError) {
        let fd = mnl_socket_get_fd(socket)
        let size = Int32(clamping: bytes)
        let refused: SystemCallError
        do {
            try LibC.setSocketOption(fd, level: SOL_SOCKET, force, size, name: forceName)
            return
        } catch {
            refused = error
        }
        do {
            try LibC.setSocketOption(fd, level: SOL_SOCKET, plain, size, name: plainName)
        } catch {
            throw NetlinkError(errno: error.errno, operation: "\(error.operation), after \(forceName) failed with \(refused.errno.name)")
        }
    }

    public func reserveSequences(_ count: Int) -> UInt32 {
        sequences.reserve(count)
    }

    public func send(_ batch: MessageBatch, operation: String) throws(NetlinkError) {
        try batch.withBytes { pointer, count throws(NetlinkError) in
            _ = try once(operation) { mnl_socket_sendto(socket, pointer, count) }
        }
    }

    /// `recvmmsg` into the slots; a datagram larger than a slot fails ENOSPC (the shim sees MSG_TRUNC).
    public func receive(operation: String, wait: Bool) throws(NetlinkError) -> [[UInt8]] {
        let fd = mnl_socket_get_fd(socket)
        let n = try lengths.withUnsafeMutableBufferPointer { lengths throws(NetlinkError) in
            try once(operation) {
                cmnl_recv_many(fd, receiveBuffer, UInt32(Self.slotSize), UInt32(Self.slots), lengths.baseAddress, wait ? 1 : 0)
            }
        }
        return (0..<Int(n)).map { slot in
            Array(UnsafeRawBufferPointer(start: receiveBuffer + slot * Self.slotSize, count: Int(lengths[slot])))
        }
    }
}

/// Runs a libmnl call that fails with -1 and errno: again while it fails with EINTR, otherwise the
/// errno is read on the line after the call. EBADF and EFAULT trap: the socket and buffers are ours.
@inline(never)
@discardableResult
private func retrying<T: FixedWidthInteger>(_ operation: @autoclosure () -> String, _ call: () -> T) throws(NetlinkError) -> T {
    while true {
        let result = call()
        if result != -1 { return result }
        let code = Errno(rawValue: Glibc.errno)
        if code == .interrupted { continue }
        precondition(code != .badFileDescriptor && code != .badAddress, "\(operation()): \(code.name)")
        throw NetlinkError(errno: code, operation: operation())
    }
}

/// One attempt at a libmnl call that fails with -1 and errno, which is read on the line after the
/// call; EINTR is thrown like any other, for the caller to try again. EBADF and EFAULT trap.
@inline(never)
@discardableResult
private func once<T: FixedWidthInteger>(_ operation: @autoclosure () -> String, _ call: () -> T) throws(NetlinkError) -> T {
    let result = call()
    if result != -1 { return result }
    let code = Errno(rawValue: Glibc.errno)
    precondition(code != .badFileDescriptor && code != .badAddress, "\(operation()): \(code.name)")
    throw NetlinkError(errno: code, operation: operation())
}

/// The same for a libmnl call that returns nil on failure.
@inline(never)
private func opening(_ operation: @autoclosure () -> String, _ call: () -> OpaquePointer?) throws(NetlinkError) -> OpaquePointer {
    while true {
        if let result = call() { return result }
        let code = Errno(rawValue: Glibc.errno)
        if code == .interrupted { continue }
        throw NetlinkError(errno: code, operation: operation())
    }
}

public enum NetlinkProtocol {
    public static let generic = NETLINK_GENERIC
    public static let route = NETLINK_ROUTE
}

public enum NetlinkFlags {
    public static let request = NLM_F_REQUEST
    public static let ack = NLM_F_ACK
    public static let dump = NLM_F_DUMP
    public static let create = NLM_F_CREATE
    public static let exclusive = NLM_F_EXCL
    public static let replace = NLM_F_REPLACE
    /// Set on a dump's messages when the kernel's table changed while it was being dumped.
    public static let dumpInterrupted = NLM_F_DUMP_INTR
}

extension MessageBatch {
    /// Writes `count` (≤ 16) bytes of an address held as two big-endian-packed words, zero-padded to `count`.
    public func put(_ type: Int, high: UInt64, low: UInt64, count: Int) {
        guard let nlh = current else { return }
        let words = (high.bigEndian, low.bigEndian)
        let ok = withUnsafeBytes(of: words) { mnl_attr_put_check(nlh, room, UInt16(type), min(count, 16), $0.baseAddress) }
        if !ok { overflowed = true }
    }
}
