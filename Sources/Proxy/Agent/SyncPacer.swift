/// Decides when the sync loop syncs, with the semantics of kube-proxy's `BoundedFrequencyRunner`
/// (`k8s.io/kubernetes/pkg/util/async/bounded_frequency_runner.go`) as its IPVS proxier drives it:
/// changes are synced at once while tokens last (`burst` of them, one back every `minSyncPeriod`),
/// are coalesced while none is left, and a resync runs every `syncPeriod` even when nothing changes.
///
/// Pure: it reads no clock and starts no thread; every call says what time it is. The loop asks
/// `next(at:)`, calls `started(resync:at:)` when told to sync, and otherwise sleeps until the
/// deadline it was given or until a change or a retry request arrives, then asks again.
///
/// kube-proxy has one kind of run; here there are two. A resync reads the kernel and repairs what
/// was changed behind the agent's back; a sync for changes plans against what the last sync left.
/// `syncPeriod` counts from the last resync, not from the last sync of any kind as kube-proxy's
/// `maxInterval` does, so a steady stream of changes cannot put a resync off.
public struct SyncPacer: Sendable {
    /// What the loop does now.
    public enum Decision: Equatable, Sendable {
        /// Sync now; `resync` says whether to read the kernel first.
        case sync(resync: Bool)
        /// Sleep until this instant or until woken by a change. nil would be nothing to wait for, but
        /// is never returned: a resync is due before the first one, and always ahead after it.
        case wait(until: ContinuousClock.Instant?)
    }

    /// kube-proxy's `--ipvs-min-sync-period` (`minInterval`): one token back per period; zero is no limit.
    public let minSyncPeriod: Duration
    /// kube-proxy's `--ipvs-sync-period` (`maxInterval`): the longest time between resyncs.
    public let syncPeriod: Duration
    /// kube-proxy's `burstRuns` (2 in its IPVS proxier): syncs that may follow one another at once.
    public let burst: Int

    /// The start of the last sync of either kind.
    public private(set) var lastSync: ContinuousClock.Instant?
    /// The start of the last resync; the next one is due `syncPeriod` later.
    public private(set) var lastResync: ContinuousClock.Instant?
    /// When the oldest change not yet taken by a sync arrived.
    public private(set) var pendingSince: ContinuousClock.Instant?
    /// The earliest sync asked for by `retry(after:at:)` since the last sync started.
    public private(set) var retryAt: ContinuousClock.Instant?

    /// The token bucket as time: a token is worth `minSyncPeriod`, the bucket holds `burst` of them.
    /// Exact where a count of tokens in floating point would drift.
    private var credit: Duration
    /// When `credit` was counted; nil while the bucket has never been drawn on (it starts full).
    private var creditAt: ContinuousClock.Instant?

    /// As kube-proxy's `NewBoundedFrequencyRunner(name, fn, minInterval, maxInterval, burstRuns)`,
    /// which also panics when `maxInterval < minInterval`.
    public init(minSyncPeriod: Duration, syncPeriod: Duration, burst: Int = 2) {
        precondition(minSyncPeriod >= .zero, "minSyncPeriod \(minSyncPeriod) is negative")
        precondition(syncPeriod > .zero, "syncPeriod \(syncPeriod) is not positive")
        precondition(syncPeriod >= minSyncPeriod, "syncPeriod \(syncPeriod) is shorter than minSyncPeriod \(minSyncPeriod)")
        precondition(burst >= 1, "burst \(burst) is less than one")
        self.minSyncPeriod = minSyncPeriod
        self.syncPeriod = syncPeriod
        self.burst = burst
        credit = minSyncPeriod * burst
    }

    /// Something changed and waits to be synced; it joins whatever else is waiting. kube-proxy's
    /// `Run()`: one queued request stands for any number.
    public mutating func changed(at now: ContinuousClock.Instant) {
        if pendingSince == nil { pendingSince = now }
    }

    /// Asks for a sync no later than `after` from now: after a failed sync, or to look at draining
    /// real servers again. kube-proxy's `RetryAfter()`: the earliest request wins, and any sync that
    /// starts later takes it (a retry asked for during a sync is for the next one).
    public mutating func retry(after: Duration, at now: ContinuousClock.Instant) {
        let deadline = now + after
        if retryAt.map({ deadline < $0 }) ?? true { retryAt = deadline }
    }

    /// Whether to sync now, and if not, until when to sleep. kube-proxy's `tryRun()`.
    ///
    /// A due resync takes a token like any sync: kube-proxy's `maxInterval` timer goes through the
    /// same `limiter.TryAccept()` as `Run()`. There a token is always back by then, as `maxInterval`
    /// has passed since the last run; here syncs for changes may have spent them, so a due resync
    /// waits for the next token (at most `minSyncPeriod`) and takes it before any change would.
    public func next(at now: ContinuousClock.Instant) -> Decision {
        let resyncAt = lastResync.map { $0 + syncPeriod }
        let resyncDue = resyncAt.map { now >= $0 } ?? true  // the first sync reads the kernel
        let retryDue = retryAt.map { now >= $0 } ?? false
        var deadlines: [ContinuousClock.Instant] = []
        if resyncDue || pendingSince != nil || retryDue {
            guard let tokenAt = nextToken(at: now) else { return .sync(resync: resyncDue) }
            deadlines.append(tokenAt)
        }
        if let resyncAt, !resyncDue { deadlines.append(resyncAt) }
        if let retryAt, !retryDue { deadlines.append(retryAt) }
        return .wait(until: deadlines.min())
    }

    /// A sync begins: it takes a token and everything waiting until now. Changes and retries that
    /// come after this call wait for the next sync. kube-proxy's `tryRun()` once `TryAccept()` said
    /// yes: it resets the timer to `maxInterval`, which drops any retry. A sync started without a
    /// token (the caller may sync regardless) leaves the bucket in debt: the following ones wait longer.
    public mutating func started(resync: Bool, at now: ContinuousClock.Instant) {
        if minSyncPeriod > .zero {
            credit = balance(at: now) - minSyncPeriod
            creditAt = now
        }
        lastSync = now
        if resync { lastResync = now }
        pendingSince = nil
        retryAt = nil
    }

    /// The bucket at `now`: refilled since it was last counted, never above `burst` tokens.
    /// client-go's token bucket (golang.org/x/time/rate) refills continuously the same way.
    private func balance(at now: ContinuousClock.Instant) -> Duration {
        guard let creditAt else { return credit }
        return min(minSyncPeriod * burst, credit + max(.zero, now - creditAt))
    }

    /// nil when a token is there now (or there is no limit); otherwise when the next one is.
    private func nextToken(at now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        guard minSyncPeriod > .zero else { return nil }
        let available = balance(at: now)
        return available >= minSyncPeriod ? nil : now + (minSyncPeriod - available)
    }
}
