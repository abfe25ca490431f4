import Foundation
import NIOConcurrencyHelpers
import Proxy

/// Keeps `SyncHealth` up to date from the sync loop and answers `/healthz` from any thread.
public final class HealthMonitor: SyncObserver, Sendable {
    private let health: NIOLockedValueBox<SyncHealth>
    private let now: @Sendable () -> Date

    public init(syncPeriod: Duration, now: @escaping @Sendable () -> Date = { Date() }) {
        health = NIOLockedValueBox(SyncHealth(syncPeriod: syncPeriod))
        self.now = now
    }

    public func sourceChanged(from previous: ClusterState?, to current: ClusterState) {
        let time = now()
        health.withLockedValue { $0.syncDue(at: time) }
    }

    public func syncFinished(_ sync: SyncRecord) {
        let time = now()
        health.withLockedValue { $0.synced(succeeded: sync.succeeded, at: time) }
    }

    /// 200 or 503 with kube-proxy's body: `{"lastUpdated": "…", "currentTime": "…"}`.
    public func healthz() -> HTTPResponse {
        let time = now()
        let (healthy, lastUpdated) = health.withLockedValue { ($0.isHealthy(at: time), $0.lastSuccess) }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let body = #"{"lastUpdated": "\#(lastUpdated.map(formatter.string) ?? "")", "currentTime": "\#(formatter.string(from: time))"}"#
        return HTTPResponse(status: healthy ? 200 : 503, contentType: "application/json", body: Array(body.utf8))
    }
}
