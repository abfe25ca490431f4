import Foundation
import NIOConcurrencyHelpers
import Proxy

/// Keeps `SyncHealth` up to date from the sync loop, follows this node's Node object, and answers
/// `/healthz` and `/livez` from any thread.
public final class HealthMonitor: SyncObserver, Sendable {
    private struct State {
        var sync: SyncHealth
        /// kube-proxy's nodeEligible: true until the Node object says the node is going away.
        var nodeEligible = true
    }

    private let state: NIOLockedValueBox<State>
    private let nodeName: String?
    private let now: @Sendable () -> Date

    /// `nodeName` names the Node object whose deletion or autoscaler taint fails `/healthz`.
    public init(syncPeriod: Duration, nodeName: String? = nil, now: @escaping @Sendable () -> Date = { Date() }) {
        state = NIOLockedValueBox(State(sync: SyncHealth(syncPeriod: syncPeriod)))
        self.nodeName = nodeName
        self.now = now
    }

    public func sourceChanged(_ changes: ClusterChanges, objects: ClusterObjects) {
        let time = now()
        // A Node object that disappears leaves the last verdict, as kube-proxy's delete handler does.
        let eligible = nodeName.flatMap(objects.node(named:))?.isEligible
        state.withLockedValue {
            $0.sync.syncDue(at: time)
            if let eligible { $0.nodeEligible = eligible }
        }
    }

    public func syncFinished(_ sync: SyncRecord) {
        let time = now()
        state.withLockedValue { $0.sync.synced(succeeded: sync.succeeded, at: time) }
    }

    /// Whether syncs are on time, whatever the node's state: what health-check node ports and
    /// `/livez` answer by.
    public var isSyncHealthy: Bool {
        let time = now()
        return state.withLockedValue { $0.sync.isHealthy(at: time) }
    }

    public var isNodeEligible: Bool { state.withLockedValue(\.nodeEligible) }

    /// 200 when syncs are on time and the node is not going away, else 503, with kube-proxy's
    /// body: `{"lastUpdated": "…", "currentTime": "…", "nodeEligible": true}`. A load balancer
    /// that checks it stops sending new connections to a node about to be removed.
    public func healthz() -> HTTPResponse {
        let (time, healthy, lastUpdated, eligible) = read()
        return response(healthy: healthy && eligible,
                        #"{"lastUpdated": "\#(lastUpdated)", "currentTime": "\#(time)", "nodeEligible": \#(eligible)}"#)
    }

    /// `/healthz` without the node's state: whether kipvs itself works, for a liveness probe,
    /// which must not restart an agent only because its node is being drained.
    public func livez() -> HTTPResponse {
        let (time, healthy, lastUpdated, _) = read()
        return response(healthy: healthy, #"{"lastUpdated": "\#(lastUpdated)", "currentTime": "\#(time)"}"#)
    }

    private func read() -> (time: String, healthy: Bool, lastUpdated: String, eligible: Bool) {
        let time = now()
        let (healthy, lastSuccess, eligible) = state.withLockedValue {
            ($0.sync.isHealthy(at: time), $0.sync.lastSuccess, $0.nodeEligible)
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return (formatter.string(from: time), healthy, lastSuccess.map(formatter.string) ?? "", eligible)
    }

    private func response(healthy: Bool, _ body: String) -> HTTPResponse {
        HTTPResponse(status: healthy ? 200 : 503, contentType: "application/json", body: Array(body.utf8))
    }
}
