import Foundation
import Logging

/// Runs the agent's syncs as kube-proxy paces them (see `SyncPacer`): a change wakes the loop and
/// is synced at once unless syncs run faster than `--ipvs-min-sync-period` allows (bursts
/// coalesce); a resync every `--ipvs-sync-period` reads the kernel back and repairs anything
/// changed behind the agent's back. Nothing syncs before the source's first complete state.
///
/// The loop runs on a thread of its own: netlink calls block, and must not hold a thread of
/// Swift's cooperative pool (which serves the API source and the HTTP endpoints) for a sync.
public final class SyncLoop: @unchecked Sendable {
    public let agent: Agent
    public let source: any ClusterSource
    public var logger: Logger
    public var observers: [any SyncObserver] = []
    /// How soon a sync that failed, or left real servers draining, is tried again.
    public var retryPeriod: Duration = .seconds(1)

    private var pacer: SyncPacer
    private let wakeup = Wakeup()
    private let stopped = NSLock()
    private var stopRequested = false
    private var hasState = false
    /// When the oldest change not yet in the kernel was seen.
    private var changeSeenAt: ContinuousClock.Instant?
    public private(set) var lastSyncSucceeded = false

    public init(agent: Agent, source: any ClusterSource, minSyncPeriod: Duration, syncPeriod: Duration, logger: Logger) {
        self.agent = agent
        self.source = source
        self.logger = logger
        pacer = SyncPacer(minSyncPeriod: minSyncPeriod, syncPeriod: syncPeriod)
        source.setWake { [wakeup] in wakeup.signal() }
    }

    /// Reads the source once and syncs once (a resync). Returns whether both succeeded.
    public func runOnce() -> Bool {
        readSource(at: .now)
        guard hasState else { return false }
        return sync(resync: true)
    }

    /// Runs until `stop()`, on a thread of its own; returns once that thread is done.
    public func run() async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let thread = Thread { [self] in
                runBlocking()
                done.resume()
            }
            thread.name = "kipvs-sync"
            thread.start()
        }
        logger.info("stopping; kernel state left in place")
    }

    /// Ends `run()` after the sync in progress, if any; callable from any thread.
    public func stop() {
        stopped.withLock { stopRequested = true }
        wakeup.signal()
    }

    private var shouldStop: Bool { stopped.withLock { stopRequested } }

    private func runBlocking() {
        let clock = ContinuousClock()
        while !shouldStop {
            let now = clock.now
            readSource(at: now)
            guard hasState else {
                _ = wakeup.wait(until: nil)
                continue
            }
            switch pacer.next(at: now) {
            case .sync(let resync):
                pacer.started(resync: resync, at: now)
                if !sync(resync: resync) || agent.isDraining {
                    // Draining real servers need another look even when the input is quiet.
                    pacer.retry(after: retryPeriod, at: clock.now)
                }
            case .wait(let deadline):
                _ = wakeup.wait(until: deadline)
            }
        }
    }

    private func readSource(at now: ContinuousClock.Instant) {
        switch source.poll() {
        case nil:
            return
        case .success(let changes):
            hasState = true
            let touched = agent.take(changes)
            guard !touched.isEmpty else { return }
            pacer.changed(at: now)
            if changeSeenAt == nil { changeSeenAt = now }
            for observer in observers { observer.sourceChanged(changes, objects: agent.objects) }
            logger.debug("source changed", metadata: ["services": "\(touched.servicesChanged)",
                                                     "endpointSlices": "\(touched.endpointSlicesChanged)"])
        case .failure(let error):
            // The last good state stays in force: nothing is torn down because of bad input.
            logger.error("source rejected; keeping the last good state",
                         metadata: ["source": "\(source.name)", "problems": "\(error)"])
        }
    }

    private func sync(resync: Bool) -> Bool {
        let clock = ContinuousClock()
        let start = clock.now
        let result: Result<SyncReport, any Error>
        do {
            let report = try agent.sync(now: start, resync: resync)
            result = .success(report)
            let elapsed = clock.now - start
            for warning in report.warnings { logger.warning("\(warning.object): \(warning.message)") }
            for failure in report.ipvs.failures { logger.error("kernel refused an operation", metadata: ["failure": "\(failure)"]) }
            if let error = report.packetFilterUnavailable {
                logger.error("this kernel cannot hold the packet filter table: masquerading, hairpin, the VIP filter and source ranges are off",
                             metadata: ["error": "\(error)"])
            }
            if let failure = report.conntrackFailure {
                logger.error("stale UDP flows not deleted; retrying next sync", metadata: ["error": "\(failure)"])
            }
            if report.changed {
                logger.info("synced", metadata: [
                    "ipvs": "\(report.ipvs)", "packetFilter": "\(report.packetFilter)",
                    "conntrackDeleted": "\(report.conntrackEntriesDeleted)", "addressesBound": "\(report.addressesBound)",
                    "addressesUnbound": "\(report.addressesUnbound)", "seconds": "\(elapsed)", "resync": "\(resync)",
                ])
            } else {
                logger.debug("synced, nothing changed", metadata: ["seconds": "\(elapsed)", "resync": "\(resync)"])
            }
            lastSyncSucceeded = report.ipvs.failures.isEmpty
        } catch {
            result = .failure(error)
            logger.error("sync failed", metadata: ["error": "\(error)"])
            lastSyncSucceeded = false
        }
        let end = clock.now
        let seen = lastSyncSucceeded ? changeSeenAt : nil
        if lastSyncSucceeded { changeSeenAt = nil }
        let record = SyncRecord(started: start, duration: end - start, result: result, sinceChangeSeen: seen.map { end - $0 })
        for observer in observers { observer.syncFinished(record) }
        return lastSyncSucceeded
    }
}
