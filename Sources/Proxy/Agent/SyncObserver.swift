/// Told what the sync loop does, for health checks and metrics. Called on the loop's task.
public protocol SyncObserver: AnyObject {
    /// The source reported changes (the first time: every object); `objects` has them applied.
    func sourceChanged(_ changes: ClusterChanges, objects: ClusterObjects)
    /// A sync ended, well or not.
    func syncFinished(_ sync: SyncRecord)
}

/// One sync, as observers see it.
public struct SyncRecord: Sendable {
    public var started: ContinuousClock.Instant
    public var duration: Duration
    /// What the sync did, or why it could not finish.
    public var result: Result<SyncReport, any Error>
    /// From the oldest source change this sync put into the kernel being seen, to the end of the
    /// sync; nil when the sync failed or carried no new change.
    public var sinceChangeSeen: Duration?

    public init(started: ContinuousClock.Instant, duration: Duration, result: Result<SyncReport, any Error>,
                sinceChangeSeen: Duration? = nil) {
        self.started = started
        self.duration = duration
        self.result = result
        self.sinceChangeSeen = sinceChangeSeen
    }

    /// Finished, and the kernel accepted every operation.
    public var succeeded: Bool {
        if case .success(let report) = result { return report.ipvs.failures.isEmpty }
        return false
    }
}
