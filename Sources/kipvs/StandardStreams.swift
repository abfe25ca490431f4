import CMnl
#if canImport(Glibc)
import Glibc
#endif

/// Standard output through a 64 KiB buffer: a saved table is 100,000s of lines.
struct BufferedStandardOutput: TextOutputStream {
    private var buffer: [UInt8] = []

    init() { buffer.reserveCapacity(1 << 16) }

    mutating func write(_ string: String) {
        buffer.append(contentsOf: string.utf8)
        if buffer.count >= 1 << 16 { flush() }
    }

    mutating func flush() {
        buffer.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(1, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return }
                offset += n
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }
}

/// All of standard input, read straight into one buffer.
func readStandardInput() -> [UInt8] {
    var bytes: [UInt8] = []
    // A redirected file tells its size: one buffer of the right size, no regrowth.
    var info = stat()
    if fstat(0, &info) == 0, info.st_mode & S_IFMT == S_IFREG { bytes.reserveCapacity(Int(info.st_size) + 1) }
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
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
