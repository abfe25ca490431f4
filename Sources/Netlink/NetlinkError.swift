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

// Transitional: the modules above still pass and compare bare numbers.
extension NetlinkError {
    @available(*, deprecated, message: "pass an Errno")
    public init(errno: Int32, operation: String) {
        self.init(errno: Errno(rawValue: errno), operation: operation)
    }
}

extension Errno {
    @available(*, deprecated, message: "compare with an Errno")
    public static func == (lhs: Errno, rhs: Int32) -> Bool { lhs.rawValue == rhs }
    @available(*, deprecated, message: "compare with an Errno")
    public static func != (lhs: Errno, rhs: Int32) -> Bool { lhs.rawValue != rhs }
    @available(*, deprecated, message: "match an Errno")
    public static func ~= (pattern: Int32, value: Errno) -> Bool { pattern == value.rawValue }
}
