import Foundation

/// kube-proxy's health rule for the sync loop: healthy while syncs succeed and are not overdue.
/// Overdue means no successful sync within `timeout` (twice the sync period), counted from the
/// last success, or, before the first, from when a sync first became due (the source's first
/// complete state). Until then nothing is due, so the agent is healthy.
public struct SyncHealth: Sendable {
    public var timeout: Duration
    public private(set) var lastSuccess: Date?
    public private(set) var dueSince: Date?

    public init(syncPeriod: Duration) {
        timeout = syncPeriod * 2
    }

    /// The source has a state to sync.
    public mutating func syncDue(at now: Date) {
        if dueSince == nil { dueSince = now }
    }

    public mutating func synced(succeeded: Bool, at now: Date) {
        if succeeded { lastSuccess = now }
    }

    public func isHealthy(at now: Date) -> Bool {
        guard let since = lastSuccess ?? dueSince else { return true }
        return now.timeIntervalSince(since) <= timeout.timeInterval
    }
}

extension Duration {
    var timeInterval: TimeInterval {
        let (seconds, attoseconds) = components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}
