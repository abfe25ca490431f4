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

        init(_ info: stat) {
            size = Int(info.st_size)
            modifiedSeconds = Int(info.st_mtim.tv_sec)
            modifiedNanoseconds = Int(info.st_mtim.tv_nsec)
            inode = UInt64(info.st_ino)
            isRegularFile = info.st_mode & S_IFMT == S_IFREG
        }
    }

    /// `stat` of a path, following symbolic links.
    public static func status(ofFile path: String) throws(SystemCallError) -> FileStatus {
        var info = stat()
        try retrying("stat \(path)") { stat(path, &info) }
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

    /// Closes a descriptor only read from: nothing can be lost, so a failure is of no interest.
    private static func closeQuietly(_ descriptor: Int32) {
        _ = close(descriptor)
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
