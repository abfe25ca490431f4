/// A failure reported by the kernel (a NACK) or by a socket call, with the operation it belongs to.
public struct NetlinkError: ErrnoCarrying, Hashable, CustomStringConvertible, Sendable {
    public let errno: Errno
    public let operation: String

    public init(errno: Errno, operation: String) {
        self.errno = errno
        self.operation = operation
    }

    /// The symbolic errno name, e.g. `EEXIST`.
    public var name: String { errno.name }

    public var description: String {
        "\(operation): \(errno) (\(errno.name))"
    }
}
