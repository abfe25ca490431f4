import CMnl
import Netlink

/// Standard output through a 64 KiB buffer: a saved table is 100,000s of lines. The first failed
/// write stops all output and is kept for `finish()`: a full disk or a closed pipe must fail the
/// command, not cut its output short in silence.
struct BufferedStandardOutput: TextOutputStream {
    private var buffer: [UInt8] = []
    private(set) var failure: SystemCallError?

    init() { buffer.reserveCapacity(1 << 16) }

    mutating func write(_ string: String) {
        guard failure == nil else { return }
        buffer.append(contentsOf: string.utf8)
        if buffer.count >= 1 << 16 { flush() }
    }

    mutating func flush() {
        guard failure == nil else { return }
        do {
            try LibC.write(1, buffer, operation: "writing standard output")
        } catch {
            failure = error
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Writes what is buffered; throws the first write that failed.
    mutating func finish() throws(SystemCallError) {
        flush()
        if let failure { throw failure }
    }
}

/// All of standard input, read straight into one buffer; throws on a read error rather than
/// return the part read so far.
func readStandardInput() throws(SystemCallError) -> [UInt8] {
    var bytes: [UInt8] = []
    // A redirected file tells its size: one buffer of the right size, no regrowth. Without it
    // (a pipe, or fstat refused) the buffer just grows.
    if let status = try? LibC.status(ofDescriptor: 0), status.isRegularFile { bytes.reserveCapacity(status.size + 1) }
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let n = try LibC.read(0, into: &chunk, operation: "reading standard input after \(bytes.count) bytes")
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
