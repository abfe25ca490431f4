import Foundation
import Logging

/// Paces syncs as kube-proxy does: a change is synced no sooner than `minSyncPeriod` after the
/// previous sync (bursts coalesce), and a full resync runs every `syncPeriod` to repair anything
/// changed behind the agent's back. Nothing syncs before the source's first complete state.
public final class SyncLoop {
    public let agent: Agent
    public let source: any ClusterSource
    public var minSyncPeriod: Duration
    public var syncPeriod: Duration
    public var pollInterval: Duration = .milliseconds(200)
    public var logger: Logger
    public var observers: [any SyncObserver] = []

    private var state: ClusterState?
    /// When the oldest change not yet in the kernel was seen.
    private var changeSeenAt: ContinuousClock.Instant?
    private var pending = false
    private var lastSync: ContinuousClock.Instant?
    private var lastKernelRead: ContinuousClock.Instant?
    public private(set) var lastSyncSucceeded = false

    public init(agent: Agent, source: any ClusterSource, minSyncPeriod: Duration, syncPeriod: Duration, logger: Logger) {
        self.agent = agent
        self.source = source
        self.minSyncPeriod = minSyncPeriod
        self.syncPeriod = syncPeriod
        self.logger = logger
    }

    /// Reads the source once and syncs once. Returns whether both succeeded.
    public func runOnce() -> Bool {
        readSource()
        guard state != nil else { return false }
        return syncNow()
    }

    /// Runs until `shouldStop` returns true (checked every poll interval).
    public func run(shouldStop: @escaping @Sendable () -> Bool) async {
        let clock = ContinuousClock()
        while !shouldStop() {
            readSource()
            let now = clock.now
            if state != nil {
                let sinceLast = lastSync.map { now - $0 }
                let changeDue = pending && (sinceLast.map { $0 >= minSyncPeriod } ?? true)
                // The periodic resync reads the kernel to repair changes made behind kipvs' back;
                // syncs for changes in between plan against what the last sync left.
                let resyncDue = lastKernelRead.map { now - $0 >= syncPeriod } ?? true
                if resyncDue { _ = syncNow(readKernel: true) } else if changeDue { _ = syncNow(readKernel: false) }
            }
            try? await Task.sleep(for: pollInterval)  // only cancellation throws, and shouldStop then ends the loop
        }
        logger.info("stopping; kernel state left in place")
    }

    private func readSource() {
        switch source.poll() {
        case nil:
            return
        case .success(let loaded):
            if loaded != state {
                let previous = state
                state = loaded
                pending = true
                if changeSeenAt == nil { changeSeenAt = .now }
                for observer in observers { observer.sourceChanged(from: previous, to: loaded) }
                logger.debug("source changed", metadata: ["services": "\(loaded.services.count)",
                                                         "endpointSlices": "\(loaded.endpointSlices.count)"])
            }
        case .failure(let error):
            // The last good state stays in force: nothing is torn down because of bad input.
            logger.error("source rejected; keeping the last good state",
                         metadata: ["source": "\(source.name)", "problems": "\(error)"])
        }
    }

    private func syncNow(readKernel: Bool = true) -> Bool {
        guard let state else { return false }
        let clock = ContinuousClock()
        let start = clock.now
        pending = false
        lastSync = start
        if readKernel { lastKernelRead = start }
        let result: Result<SyncReport, any Error>
        do {
            let report = try agent.sync(state, now: start, readKernel: readKernel)
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
                    "addressesUnbound": "\(report.addressesUnbound)", "seconds": "\(elapsed)",
                ])
            } else {
                logger.debug("synced, nothing changed", metadata: ["seconds": "\(elapsed)"])
            }
            lastSyncSucceeded = report.ipvs.failures.isEmpty
            // Draining real servers need another look even when the input is quiet.
            if !agent.reconciler.termination.drainingSince.isEmpty { pending = true }
        } catch {
            result = .failure(error)
            logger.error("sync failed", metadata: ["error": "\(error)"])
            lastSyncSucceeded = false
            pending = true
        }
        let end = clock.now
        let seen = lastSyncSucceeded ? changeSeenAt : nil
        if lastSyncSucceeded { changeSeenAt = nil }
        let record = SyncRecord(started: start, duration: end - start, result: result, sinceChangeSeen: seen.map { end - $0 })
        for observer in observers { observer.syncFinished(record) }
        return lastSyncSucceeded
    }
}
