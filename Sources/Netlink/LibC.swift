// Every call into libc and every raw pointer handed to it lives in this file; libmnl's calls live in
// Libmnl.swift, libnftnl's in Libnftnl.swift. The rest of kipvs works on arrays and values.
#if canImport(Glibc)
import Glibc
#endif

/// A failed libc call: what was being done, and the errno it left.
public struct SystemCallError: ErrnoCarrying, Hashable, Sendable, CustomStringConvertible {
    public let errno: Errno
    public let operation: String

    public init(errno: Errno, operation: String) {
        self.errno = errno
        self.operation = operation
    }

    public var description: String { "\(operation): \(errno) (\(errno.name))" }
}

/// libc, one wrapper per call.
public enum LibC {
    /// Runs `call` again while it fails with EINTR; another failure (-1) throws with the errno read on
    /// the line after the call, before anything else can overwrite it. EFAULT is a bug here, so it traps.
    @inline(never)
    @discardableResult
    static func retrying<T: FixedWidthInteger>(_ operation: @autoclosure () -> String, _ call: () -> T) throws(SystemCallError) -> T {
        while true {
            let result = call()
            if result != -1 { return result }
            let code = Errno(rawValue: Glibc.errno)
            if code == .interrupted { continue }
            precondition(code != .badAddress, "\(operation()): EFAULT, a bad pointer")
            throw SystemCallError(errno: code, operation: operation())
        }
    }

    /// strerror's text for `code`.
    static func errorText(_ code: Int32) -> String {
        String(cString: strerror(code))
    }

    // MARK: - Sockets

    /// Sets an `int` socket option; `name` (e.g. `SO_RCVBUF`) goes into the error.
    public static func setSocketOption(_ descriptor: Int32, level: Int32, _ option: Int32, _ value: Int32, name: String)
        throws(SystemCallError) {
        var v = value
        try retrying("set socket option \(name) to \(value)") {
            setsockopt(descriptor, level, option, &v, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    // MARK: - Files

    /// What `stat` tells of a file: enough to see that it changed.
    public struct FileStatus: Hashable, Sendable {
        public var size: Int
        public var modifiedSeconds: Int
        public var modifiedNanoseconds: Int
        public var inode: UInt64
        public var isRegularFile: Bool
        public var isDirectory: Bool
        /// Only `linkStatus` sees a link; `status` follows it.
        public var isSymbolicLink: Bool

        init(_ info: stat) {
            size = Int(info.st_size)
            modifiedSeconds = Int(info.st_mtim.tv_sec)
            modifiedNanoseconds = Int(info.st_mtim.tv_nsec)
            inode = UInt64(info.st_ino)
            isRegularFile = info.st_mode & S_IFMT == S_IFREG
            isDirectory = info.st_mode & S_IFMT == S_IFDIR
            isSymbolicLink = info.st_mode & S_IFMT == S_IFLNK
        }
    }

    /// `stat` of a path, following symbolic links.
    public static func status(ofFile path: String) throws(SystemCallError) -> FileStatus {
        var info = stat()
        try retrying("stat \(path)") { stat(path, &info) }
        return FileStatus(info)
    }

    /// `lstat` of a path: a symbolic link itself, not what it points to.
    public static func linkStatus(ofFile path: String) throws(SystemCallError) -> FileStatus {
        var info = stat()
        try retrying("lstat \(path)") { lstat(path, &info) }
        return FileStatus(info)
    }

    /// `fstat` of an open descriptor.
    public static func status(ofDescriptor descriptor: Int32) throws(SystemCallError) -> FileStatus {
        var info = stat()
        try retrying("stat descriptor \(descriptor)") { fstat(descriptor, &info) }
        return FileStatus(info)
    }

    /// One `read` into the front of `buffer`; the number of bytes read, 0 at the end.
    public static func read(_ descriptor: Int32, into buffer: inout [UInt8], operation: @autoclosure () -> String)
        throws(SystemCallError) -> Int {
        var result: Result<Int, SystemCallError> = .success(0)
        buffer.withUnsafeMutableBytes { raw in
            do throws(SystemCallError) {
                result = .success(try retrying(operation()) { Glibc.read(descriptor, raw.baseAddress, raw.count) })
            } catch {
                result = .failure(error)
            }
        }
        return try result.get()
    }

    /// Writes all of `bytes`, as many `write`s as it takes.
    public static func write(_ descriptor: Int32, _ bytes: [UInt8], operation: @autoclosure () -> String) throws(SystemCallError) {
        var failure: SystemCallError?
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                do throws(SystemCallError) {
                    offset += try retrying(operation()) { Glibc.write(descriptor, raw.baseAddress! + offset, raw.count - offset) }
                } catch {
                    failure = error
                    return
                }
            }
        }
        if let failure { throw failure }
    }

    /// The whole of a small file (a `/proc` entry), at most `limit` bytes.
    public static func readFile(_ path: String, limit: Int = 64 * 1024) throws(SystemCallError) -> [UInt8] {
        let descriptor = try retrying("open \(path)") { open(path, O_RDONLY | O_CLOEXEC) }
        defer { closeQuietly(descriptor) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while out.count < limit {
            let n = try read(descriptor, into: &chunk, operation: "read \(path)")
            if n == 0 { break }
            out += chunk[..<n]
        }
        return Array(out.prefix(limit))
    }

    /// What `readRegularFile` found: the file's status, and its bytes unless it is no regular file
    /// or `stat` already says it is over the limit.
    public struct BoundedRead: Sendable {
        public var status: FileStatus
        /// At most the limit + 1 bytes: more than the limit means the file grew while it was read.
        public var bytes: [UInt8]?
    }

    /// A regular file's bytes, read no further than `limit` + 1. `stat` comes first, so that nothing
    /// but a regular file is opened (a FIFO waits for a writer, a device may never end). Errors
    /// name the call alone (`stat`, `open`, `fstat`, `read`): the caller names the path.
    public static func readRegularFile(_ path: String, limit: Int) throws(SystemCallError) -> BoundedRead {
        var info = stat()
        try retrying("stat") { stat(path, &info) }
        let named = FileStatus(info)
        guard named.isRegularFile, named.size <= limit else { return BoundedRead(status: named) }
        // O_NONBLOCK: replaced by a FIFO since the stat, it still opens without waiting for a writer;
        // O_NOCTTY: nor does a terminal become the process's. fstat below refuses both.
        let descriptor = try retrying("open") { open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK) }
        defer { closeQuietly(descriptor) }
        try retrying("fstat") { fstat(descriptor, &info) }
        let status = FileStatus(info)
        guard status.isRegularFile, status.size <= limit else { return BoundedRead(status: status) }
        var bytes = [UInt8](repeating: 0, count: status.size + 1)  // one more: a file that grew shows itself
        var count = 0
        while true {
            if count == bytes.count {
                if count > limit { break }
                bytes.append(contentsOf: repeatElement(0, count: min(max(count, 4096), limit + 1 - count)))
            }
            let n = try read(descriptor, into: &bytes, at: count, operation: "read")
            if n == 0 { break }
            count += n
        }
        bytes.removeSubrange(count...)
        return BoundedRead(status: status, bytes: bytes)
    }

    /// One `read` into `buffer` from `offset` on; the number of bytes read, 0 at the end.
    private static func read(_ descriptor: Int32, into buffer: inout [UInt8], at offset: Int, operation: @autoclosure () -> String)
        throws(SystemCallError) -> Int {
        var result: Result<Int, SystemCallError> = .success(0)
        buffer.withUnsafeMutableBytes { raw in
            do throws(SystemCallError) {
                result = .success(try retrying(operation()) { Glibc.read(descriptor, raw.baseAddress! + offset, raw.count - offset) })
            } catch {
                result = .failure(error)
            }
        }
        return try result.get()
    }

    /// Writes `bytes` to an existing file (a `/proc/sys` entry) in one `write`, as the kernel wants
    /// a sysctl's value, and closes it, reporting a failed close.
    public static func writeFile(_ path: String, _ bytes: [UInt8]) throws(SystemCallError) {
        let descriptor = try retrying("open \(path) for writing") { open(path, O_WRONLY | O_CLOEXEC) }
        do {
            try write(descriptor, bytes, operation: "write \(path)")
        } catch {
            closeQuietly(descriptor)
            throw error
        }
        // Linux frees the descriptor even when close fails, so EINTR must not be retried.
        if close(descriptor) == -1 {
            let code = Errno(rawValue: Glibc.errno)
            if code != .interrupted { throw SystemCallError(errno: code, operation: "close \(path)") }
        }
    }

    /// Closes a descriptor; `name` says which in the error.
    public static func closeDescriptor(_ descriptor: Int32, name: @autoclosure () -> String) throws(SystemCallError) {
        // Linux frees the descriptor even when close fails, so EINTR must not be retried.
        if close(descriptor) == -1 {
            let code = Errno(rawValue: Glibc.errno)
            if code != .interrupted { throw SystemCallError(errno: code, operation: "close \(name())") }
        }
    }

    /// Closes a descriptor only read from: nothing can be lost, so a failure is of no interest.
    private static func closeQuietly(_ descriptor: Int32) {
        _ = close(descriptor)
    }

    // MARK: - inotify, pipes, poll

    /// inotify's event bits: what a watch asks for, and what an event reports.
    public struct InotifyMask: OptionSet, Hashable, Sendable {
        public let rawValue: UInt32

        public init(rawValue: UInt32) { self.rawValue = rawValue }

        public static let attributes = InotifyMask(rawValue: UInt32(IN_ATTRIB))
        public static let closeWrite = InotifyMask(rawValue: UInt32(IN_CLOSE_WRITE))
        /// Written to, or truncated.
        public static let modify = InotifyMask(rawValue: UInt32(IN_MODIFY))
        public static let movedFrom = InotifyMask(rawValue: UInt32(IN_MOVED_FROM))
        public static let movedTo = InotifyMask(rawValue: UInt32(IN_MOVED_TO))
        public static let create = InotifyMask(rawValue: UInt32(IN_CREATE))
        public static let delete = InotifyMask(rawValue: UInt32(IN_DELETE))
        public static let deleteSelf = InotifyMask(rawValue: UInt32(IN_DELETE_SELF))
        public static let moveSelf = InotifyMask(rawValue: UInt32(IN_MOVE_SELF))
        /// Asked with a watch: only if the path is a directory.
        public static let onlyDirectory = InotifyMask(rawValue: UInt32(IN_ONLYDIR))
        /// Reported only: events were lost (the queue was full); the watch descriptor is -1.
        public static let queueOverflow = InotifyMask(rawValue: UInt32(IN_Q_OVERFLOW))
        /// Reported only: the watch is gone (removed, or its directory deleted or unmounted).
        public static let ignored = InotifyMask(rawValue: UInt32(IN_IGNORED))
        /// Reported only: the name is a directory.
        public static let isDirectory = InotifyMask(rawValue: UInt32(IN_ISDIR))
    }

    /// One inotify event: the watch it came from, what happened, and the name in the watched
    /// directory ("" for the directory itself).
    public struct InotifyEvent: Hashable, Sendable {
        public var watch: Int32
        public var mask: InotifyMask
        public var name: String

        public init(watch: Int32, mask: InotifyMask, name: String) {
            self.watch = watch
            self.mask = mask
            self.name = name
        }
    }

    /// `inotify_init1`: a non-blocking, close-on-exec inotify descriptor.
    public static func inotifyInit() throws(SystemCallError) -> Int32 {
        try retrying("inotify_init1") { inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC)) }
    }

    /// `inotify_add_watch`: the watch descriptor, the same one again for the same inode.
    public static func addWatch(_ inotify: Int32, path: String, mask: InotifyMask) throws(SystemCallError) -> Int32 {
        try retrying("inotify_add_watch \(path)") { inotify_add_watch(inotify, path, mask.rawValue) }
    }

    /// `inotify_rm_watch`.
    public static func removeWatch(_ inotify: Int32, _ watch: Int32) throws(SystemCallError) {
        try retrying("inotify_rm_watch \(watch)") { inotify_rm_watch(inotify, watch) }
    }

    /// The events waiting on a non-blocking inotify descriptor, read with one `read` into `buffer`;
    /// empty when there are none.
    public static func readInotifyEvents(_ inotify: Int32, buffer: inout [UInt8]) throws(SystemCallError) -> [InotifyEvent] {
        // A buffer that cannot hold the next event makes read fail with EINVAL.
        precondition(buffer.count >= MemoryLayout<inotify_event>.size + Int(NAME_MAX) + 1, "inotify buffer too small")
        let count: Int
        do throws(SystemCallError) {
            count = try read(inotify, into: &buffer, operation: "read inotify events")
        } catch where error.errno == .resourceTemporarilyUnavailable {
            return []
        }
        var events: [InotifyEvent] = []
        buffer.withUnsafeBytes { raw in
            let header = MemoryLayout<inotify_event>.size
            var offset = 0
            while offset + header <= count {
                let event = raw.loadUnaligned(fromByteOffset: offset, as: inotify_event.self)
                let nameEnd = min(offset + header + Int(event.len), count)
                // The name is padded with NULs to `len` bytes.
                let name = raw[(offset + header)..<nameEnd].prefix { $0 != 0 }
                events.append(InotifyEvent(watch: event.wd, mask: InotifyMask(rawValue: event.mask),
                                           name: String(decoding: name, as: UTF8.self)))
                offset = nameEnd
            }
        }
        return events
    }

    /// A pipe whose ends are non-blocking and closed on exec: one thread pokes the write end to
    /// wake another waiting on the read end.
    public static func makePipe() throws(SystemCallError) -> (read: Int32, write: Int32) {
        var ends: [Int32] = [-1, -1]
        try retrying("pipe") { pipe(&ends) }
        do throws(SystemCallError) {
            for end in ends {
                try retrying("fcntl F_SETFD FD_CLOEXEC on pipe \(end)") { fcntl(end, F_SETFD, FD_CLOEXEC) }
                let flags = try retrying("fcntl F_GETFL on pipe \(end)") { fcntl(end, F_GETFL) }
                try retrying("fcntl F_SETFL O_NONBLOCK on pipe \(end)") { fcntl(end, F_SETFL, flags | O_NONBLOCK) }
            }
        } catch {
            closeQuietly(ends[0])
            closeQuietly(ends[1])
            throw error
        }
        return (ends[0], ends[1])
    }

    /// Writes one byte to a non-blocking pipe. A full pipe is fine: its reader has a wake-up waiting.
    public static func poke(_ descriptor: Int32) throws(SystemCallError) {
        var byte: UInt8 = 1
        do throws(SystemCallError) {
            try retrying("write to wake-up pipe \(descriptor)") { Glibc.write(descriptor, &byte, 1) }
        } catch where error.errno == .resourceTemporarilyUnavailable {
            return
        }
    }

    /// Reads a non-blocking pipe until it is empty.
    public static func drain(_ descriptor: Int32) throws(SystemCallError) {
        var buffer = [UInt8](repeating: 0, count: 64)
        while true {
            do throws(SystemCallError) {
                if try read(descriptor, into: &buffer, operation: "read wake-up pipe \(descriptor)") == 0 { return }
            } catch where error.errno == .resourceTemporarilyUnavailable {
                return
            }
        }
    }

    /// `poll` for input on `descriptors` for at most `timeout` (nil: no limit); for each, whether
    /// it has input (or an error or hang-up, which a read then reports).
    public static func waitForInput(_ descriptors: [Int32], timeout: Duration?) throws(SystemCallError) -> [Bool] {
        var entries = descriptors.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        let milliseconds: Int32
        if let timeout {
            // Rounded up: a timeout rounded down to 0 would spin until the deadline.
            let (seconds, attoseconds) = max(timeout, .zero).components
            let total = seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
            milliseconds = Int32(clamping: total)
        } else {
            milliseconds = -1
        }
        // EINTR is retried with the whole timeout again: a wait that long is still bounded.
        try retrying("poll \(descriptors)") { poll(&entries, nfds_t(entries.count), milliseconds) }
        return entries.map { $0.revents != 0 }
    }

    // MARK: - The rest

    /// `uname -r`: the running kernel's release.
    public static func kernelRelease() -> String {
        var name = utsname()
        let result = uname(&name)
        precondition(result == 0, "uname: \(Errno(rawValue: Glibc.errno).name)")  // it fails only for a bad pointer
        return withUnsafeBytes(of: name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// The 16 bytes of textual IPv6 (`inet_pton`), nil when it is no IPv6 address.
    public static func ipv6Bytes(_ text: String) -> [UInt8]? {
        var address = in6_addr()
        guard inet_pton(AF_INET6, text, &address) == 1 else { return nil }
        return withUnsafeBytes(of: address) { Array($0) }
    }

    /// RFC 5952 text of 16 IPv6 bytes (`inet_ntop`).
    public static func ipv6Text(_ bytes: [UInt8]) -> String? {
        guard bytes.count == 16 else { return nil }
        var out = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let ok = bytes.withUnsafeBytes { inet_ntop(AF_INET6, $0.baseAddress, &out, socklen_t(out.count)) } != nil
        return ok ? String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : nil
    }

    /// Seconds since the epoch (`time`).
    public static func secondsSinceEpoch() -> Int {
        Int(time(nil))
    }
}
