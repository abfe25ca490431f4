import Netlink

/// A failed IPVS operation, classified so that callers can act on it.
public struct IPVSError: ErrnoCarrying, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        /// The kernel has no IPVS (module not loaded and not loadable).
        case unavailable
        case alreadyExists
        case noSuchVirtualServer
        case noSuchRealServer
        case unknownScheduler
        case invalid
        case outOfRange
        case permissionDenied
        case addressFamilyNotSupported
        /// Replies were lost (ENOBUFS): which operations ran is unknown.
        case stateUnknown
        case other
    }

    public let kind: Kind
    public let underlying: NetlinkError

    public init(kind: Kind, underlying: NetlinkError) {
        self.kind = kind
        self.underlying = underlying
    }

    public var errno: Errno { underlying.errno }

    public var description: String {
        switch kind {
        case .unavailable:
            "this kernel has no IPVS (is ip_vs loaded?): \(underlying)"
        case .noSuchVirtualServer:
            "\(underlying.operation): no such virtual server (\(underlying.name))"
        case .noSuchRealServer:
            "\(underlying.operation): no such real server (\(underlying.name))"
        case .unknownScheduler:
            "\(underlying.operation): unknown scheduler or persistence engine (\(underlying.name))"
        case .alreadyExists:
            "\(underlying.operation): already exists (\(underlying.name))"
        case .permissionDenied:
            "\(underlying.operation): permission denied, CAP_NET_ADMIN is needed (\(underlying.name))"
        default:
            underlying.description
        }
    }

    /// Maps the kernel's errno for `operation` to a kind, following the kernel's own use of each.
    static func classify(_ error: NetlinkError, for operation: IPVSOperation?) -> IPVSError {
        let kind: Kind
        switch error.errno {
        case .fileExists: kind = .alreadyExists
        case .noSuchProcess: kind = .noSuchVirtualServer
        case .noSuchFileOrDirectory:
            switch operation {
            case .updateRealServer, .deleteRealServer: kind = .noSuchRealServer
            case .addVirtualServer, .updateVirtualServer: kind = .unknownScheduler
            default: kind = .other
            }
        case .invalidArgument: kind = .invalid
        case .outOfRange: kind = .outOfRange
        case .notPermitted, .permissionDenied: kind = .permissionDenied
        case .addressFamilyNotSupported: kind = .addressFamilyNotSupported
        // Acks lost (ENOBUFS) or unreadable (EPROTO): the batch may or may not have been applied.
        case .noBufferSpace, .protocolError: kind = .stateUnknown
        default: kind = .other
        }
        return IPVSError(kind: kind, underlying: error)
    }
}
