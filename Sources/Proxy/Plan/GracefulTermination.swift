import IPVS

/// Real servers being drained: leaving TCP real servers that still had connections, set to weight
/// 0 so that they get no new ones, and deleted once those are gone or the grace period is over.
/// The caller keeps this between plans; time is passed in.
public struct GracefulTermination: Hashable, Sendable {
    public struct Key: Hashable, Sendable {
        public var virtualServer: VirtualServerKey
        public var realServer: RealServerKey

        public init(virtualServer: VirtualServerKey, realServer: RealServerKey) {
            self.virtualServer = virtualServer
            self.realServer = realServer
        }
    }

    public static let defaultGracePeriod: Duration = .seconds(15 * 60)

    /// How long a drained real server may keep connections before it is deleted anyway.
    public var gracePeriod: Duration
    /// When each draining real server was first set to weight 0.
    public internal(set) var drainingSince: [Key: ContinuousClock.Instant]

    public init(gracePeriod: Duration = GracefulTermination.defaultGracePeriod) {
        self.gracePeriod = gracePeriod
        self.drainingSince = [:]
    }

    /// Only TCP has connections worth draining; UDP and SCTP real servers are deleted at once.
    static func drains(_ key: VirtualServerKey) -> Bool {
        if case .service(.tcp, _, _) = key { return true }
        return false
    }

    /// Drops the record of a real server whose weight-0 update did not reach the kernel.
    public mutating func forget(_ key: Key) {
        drainingSince[key] = nil
    }
}
