import CMnl
#if canImport(Glibc)
import Glibc
#endif

/// A failed read or write of a standard stream, with errno's text.
struct StreamError: Error, CustomStringConvertible {
    let operation: String
    let errno: Int32

    var description: String { "\(operation): \(String(cString: strerror(errno))) (errno \(errno))" }
}

/// Standard output through a 64 KiB buffer: a saved table is 100,000s of lines. The first failed
/// write stops all output and is kept for `finish()`: a full disk or a closed pipe must fail the
/// command, not cut its output short in silence.
struct BufferedStandardOutput: TextOutputStream {
    private var buffer: [UInt8] = []
    private(set) var failure: StreamError?

    init() { buffer.reserveCapacity(1 << 16) }

    mutating func write(_ string: String) {
        guard failure == nil else { return }
        buffer.append(contentsOf: string.utf8)
        if buffer.count >= 1 << 16 { flush() }
    }

    mutating func flush() {
        guard failure == nil else { return }
        let error: Int32? = buffer.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(1, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    let code = errno
                    if code == EINTR { continue }
                    return code
                }
                offset += n
            }
            return nil
        }
        buffer.removeAll(keepingCapacity: true)
        if let error { failure = StreamError(operation: "writing standard output", errno: error) }
    }

    /// Writes what is buffered; throws the first write that failed.
    mutating func finish() throws(StreamError) {
        flush()
        if let failure { throw failure }
    }
}

/// All of standard input, read straight into one buffer; throws on a read error rather than
/// return the part read so far.
func readStandardInput() throws(StreamError) -> [UInt8] {
    var bytes: [UInt8] = []
    // A redirected file tells its size: one buffer of the right size, no regrowth.
    var info = stat()
    if fstat(0, &info) == 0, info.st_mode & S_IFMT == S_IFREG { bytes.reserveCapacity(Int(info.st_size) + 1) }
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
        if n < 0 {
            let code = errno
            if code == EINTR { continue }
            throw StreamError(operation: "reading standard input after \(bytes.count) bytes", errno: code)
        }
        guard n > 0 else { return bytes }
        bytes.append(contentsOf: chunk[..<n])
    }
}

/// Keeps freed memory in the process instead of handing it back and faulting it in again:
/// large tables are built, diffed and dropped on every sync. Where page faults are dear (a
/// virtualised kernel) this is a large part of the run time of a big restore.
func keepFreedMemory() {
    cmnl_keep_freed_memory()
}
