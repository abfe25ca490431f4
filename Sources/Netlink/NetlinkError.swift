#if canImport(Glibc)
import Glibc
#endif

/// A failure reported by the kernel (a NACK) or by a socket call, with the operation it belongs to.
public struct NetlinkError: Error, Hashable, CustomStringConvertible, Sendable {
    public let errno: Int32
    public let operation: String

    public init(errno: Int32, operation: String) {
        self.errno = errno
        self.operation = operation
    }

    /// The symbolic errno name, e.g. `EEXIST`.
    public var name: String { Self.names[errno] ?? "errno \(errno)" }

    public var description: String {
        "\(operation): \(String(cString: strerror(errno))) (\(name))"
    }

    static let names: [Int32: String] = [
        EPERM: "EPERM", ENOENT: "ENOENT", ESRCH: "ESRCH", EINTR: "EINTR", E2BIG: "E2BIG",
        EBADF: "EBADF", EAGAIN: "EAGAIN", ENOMEM: "ENOMEM", EACCES: "EACCES", EFAULT: "EFAULT",
        EBUSY: "EBUSY", EEXIST: "EEXIST", ENODEV: "ENODEV", EINVAL: "EINVAL", ENOSPC: "ENOSPC",
        ERANGE: "ERANGE", EMSGSIZE: "EMSGSIZE", ENOPROTOOPT: "ENOPROTOOPT",
        EPROTONOSUPPORT: "EPROTONOSUPPORT", EOPNOTSUPP: "EOPNOTSUPP", EAFNOSUPPORT: "EAFNOSUPPORT",
        EADDRINUSE: "EADDRINUSE", EADDRNOTAVAIL: "EADDRNOTAVAIL", ENOBUFS: "ENOBUFS",
        ETIMEDOUT: "ETIMEDOUT", ECONNREFUSED: "ECONNREFUSED", ENODATA: "ENODATA",
    ]
}
