#if canImport(Glibc)
import Glibc
#endif

/// An errno value, as the kernel or libc reported it, with a readable name. Matches by name in a
/// `switch` (`case .fileExists`) or a condition (`error.errno ~= .noBufferSpace`), and any error
/// that carries one in a `catch` (`catch Errno.noBufferSpace`). The only place errno numbers appear.
public struct Errno: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32

    public init(rawValue: Int32) {
        self.rawValue = rawValue
    }

    /// EPERM: the caller lacks a capability (CAP_NET_ADMIN for netlink writes).
    public static let notPermitted = Errno(rawValue: EPERM)
    /// ENOENT
    public static let noSuchFileOrDirectory = Errno(rawValue: ENOENT)
    /// ESRCH: IPVS answers it for a virtual server it does not have.
    public static let noSuchProcess = Errno(rawValue: ESRCH)
    /// EINTR: a signal interrupted the call; try again.
    public static let interrupted = Errno(rawValue: EINTR)
    /// EIO
    public static let ioError = Errno(rawValue: EIO)
    /// ENXIO
    public static let noSuchAddressOrDevice = Errno(rawValue: ENXIO)
    /// E2BIG
    public static let argListTooLong = Errno(rawValue: E2BIG)
    /// EBADF
    public static let badFileDescriptor = Errno(rawValue: EBADF)
    /// EAGAIN (also EWOULDBLOCK)
    public static let resourceTemporarilyUnavailable = Errno(rawValue: EAGAIN)
    /// ENOMEM
    public static let noMemory = Errno(rawValue: ENOMEM)
    /// EACCES
    public static let permissionDenied = Errno(rawValue: EACCES)
    /// EFAULT: a bad pointer was passed, always a bug of the caller.
    public static let badAddress = Errno(rawValue: EFAULT)
    /// EBUSY
    public static let resourceBusy = Errno(rawValue: EBUSY)
    /// EEXIST
    public static let fileExists = Errno(rawValue: EEXIST)
    /// ENODEV: rtnetlink answers it for an interface it does not have.
    public static let noSuchDevice = Errno(rawValue: ENODEV)
    /// ENOTDIR
    public static let notDirectory = Errno(rawValue: ENOTDIR)
    /// EISDIR
    public static let isDirectory = Errno(rawValue: EISDIR)
    /// EINVAL
    public static let invalidArgument = Errno(rawValue: EINVAL)
    /// EMFILE
    public static let tooManyOpenFiles = Errno(rawValue: EMFILE)
    /// ENOSPC
    public static let noSpace = Errno(rawValue: ENOSPC)
    /// EROFS
    public static let readOnlyFileSystem = Errno(rawValue: EROFS)
    /// EPIPE
    public static let brokenPipe = Errno(rawValue: EPIPE)
    /// ERANGE
    public static let outOfRange = Errno(rawValue: ERANGE)
    /// ENOSYS
    public static let noFunction = Errno(rawValue: ENOSYS)
    /// ENODATA
    public static let noData = Errno(rawValue: ENODATA)
    /// EPROTO: kipvs also uses it for a reply it cannot read.
    public static let protocolError = Errno(rawValue: EPROTO)
    /// EBADMSG: kipvs also uses it for a reply that lacks what it must hold.
    public static let badMessage = Errno(rawValue: EBADMSG)
    /// EOVERFLOW
    public static let overflow = Errno(rawValue: EOVERFLOW)
    /// EMSGSIZE
    public static let messageTooLong = Errno(rawValue: EMSGSIZE)
    /// ENOPROTOOPT: the kernel does not know a socket option.
    public static let protocolNotAvailable = Errno(rawValue: ENOPROTOOPT)
    /// EPROTONOSUPPORT: the kernel has no such netlink protocol (no nfnetlink, for one).
    public static let protocolNotSupported = Errno(rawValue: EPROTONOSUPPORT)
    /// EOPNOTSUPP, the same number as ENOTSUP on Linux.
    public static let notSupported = Errno(rawValue: EOPNOTSUPP)
    /// EAFNOSUPPORT
    public static let addressFamilyNotSupported = Errno(rawValue: EAFNOSUPPORT)
    /// EADDRINUSE
    public static let addressInUse = Errno(rawValue: EADDRINUSE)
    /// EADDRNOTAVAIL: rtnetlink answers it for removing an address the interface does not hold.
    public static let addressNotAvailable = Errno(rawValue: EADDRNOTAVAIL)
    /// ENETDOWN
    public static let networkDown = Errno(rawValue: ENETDOWN)
    /// ENETUNREACH
    public static let networkUnreachable = Errno(rawValue: ENETUNREACH)
    /// ECONNRESET
    public static let connectionReset = Errno(rawValue: ECONNRESET)
    /// ENOBUFS: on a netlink socket, the kernel dropped replies for lack of receive buffer.
    public static let noBufferSpace = Errno(rawValue: ENOBUFS)
    /// ETIMEDOUT
    public static let timedOut = Errno(rawValue: ETIMEDOUT)
    /// ECONNREFUSED
    public static let connectionRefused = Errno(rawValue: ECONNREFUSED)
    /// ENAMETOOLONG
    public static let fileNameTooLong = Errno(rawValue: ENAMETOOLONG)
    /// ELOOP
    public static let tooManySymbolicLinkLevels = Errno(rawValue: ELOOP)
    /// ECANCELED
    public static let canceled = Errno(rawValue: ECANCELED)

    private static let names: [Errno: String] = [
        .notPermitted: "EPERM", .noSuchFileOrDirectory: "ENOENT", .noSuchProcess: "ESRCH", .interrupted: "EINTR",
        .ioError: "EIO", .noSuchAddressOrDevice: "ENXIO", .argListTooLong: "E2BIG", .badFileDescriptor: "EBADF",
        .resourceTemporarilyUnavailable: "EAGAIN", .noMemory: "ENOMEM", .permissionDenied: "EACCES",
        .badAddress: "EFAULT", .resourceBusy: "EBUSY", .fileExists: "EEXIST", .noSuchDevice: "ENODEV",
        .notDirectory: "ENOTDIR", .isDirectory: "EISDIR", .invalidArgument: "EINVAL", .tooManyOpenFiles: "EMFILE",
        .noSpace: "ENOSPC", .readOnlyFileSystem: "EROFS", .brokenPipe: "EPIPE", .outOfRange: "ERANGE",
        .noFunction: "ENOSYS", .noData: "ENODATA", .protocolError: "EPROTO", .badMessage: "EBADMSG",
        .overflow: "EOVERFLOW", .messageTooLong: "EMSGSIZE", .protocolNotAvailable: "ENOPROTOOPT",
        .protocolNotSupported: "EPROTONOSUPPORT", .notSupported: "EOPNOTSUPP",
        .addressFamilyNotSupported: "EAFNOSUPPORT", .addressInUse: "EADDRINUSE",
        .addressNotAvailable: "EADDRNOTAVAIL", .networkDown: "ENETDOWN", .networkUnreachable: "ENETUNREACH",
        .connectionReset: "ECONNRESET", .noBufferSpace: "ENOBUFS", .timedOut: "ETIMEDOUT",
        .connectionRefused: "ECONNREFUSED", .fileNameTooLong: "ENAMETOOLONG", .tooManySymbolicLinkLevels: "ELOOP",
        .canceled: "ECANCELED",
    ]

    /// The symbolic name, e.g. `EEXIST`; `errno 133` for one this table lacks.
    public var name: String { Self.names[self] ?? "errno \(rawValue)" }

    /// strerror's text, e.g. `File exists`.
    public var description: String { LibC.errorText(rawValue) }

    /// Matches any error that carries this errno: `catch Errno.noBufferSpace`.
    public static func ~= (pattern: Errno, error: any Error) -> Bool {
        (error as? any ErrnoCarrying)?.errno == pattern
    }
}

/// An error that carries the errno of the call that failed.
public protocol ErrnoCarrying: Error {
    var errno: Errno { get }
}
