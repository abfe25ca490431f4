import Foundation
import IPVS
import Metrics
import Netlink
import Proxy

/// Records the sync loop's work under kube-proxy's metric names, plus kipvs' kernel counters.
public final class SyncMetrics: SyncObserver {
    private let factory: any MetricsFactory
    private let now: @Sendable () -> Date
    private let syncDuration: Metrics.Timer
    private let lastSync: Gauge
    private let networkProgramming: Metrics.Timer
    private let endpointChanges: Counter
    private let serviceChanges: Counter

    public init(factory: any MetricsFactory = MetricsSystem.factory, now: @escaping @Sendable () -> Date = { Date() }) {
        self.factory = factory
        self.now = now
        syncDuration = Timer(label: MetricName.syncDuration, factory: factory)
        lastSync = Gauge(label: MetricName.lastSyncTimestamp, factory: factory)
        networkProgramming = Timer(label: MetricName.networkProgrammingDuration, factory: factory)
        endpointChanges = Counter(label: MetricName.endpointChanges, factory: factory)
        serviceChanges = Counter(label: MetricName.serviceChanges, factory: factory)
    }

    public func sourceChanged(_ changes: ClusterChanges, objects: ClusterObjects) {
        serviceChanges.increment(by: changes.services.count)
        endpointChanges.increment(by: changes.endpointSlices.count)
    }

    public func syncFinished(_ sync: SyncRecord) {
        syncDuration.recordNanoseconds(Int64(sync.duration.timeInterval * 1e9))
        if sync.succeeded { lastSync.record(now().timeIntervalSince1970) }
        if let latency = sync.sinceChangeSeen { networkProgramming.recordNanoseconds(Int64(latency.timeInterval * 1e9)) }
        switch sync.result {
        case .success(let report):
            let summary = report.ipvs
            let done: [(String, Int)] = [
                ("add_virtual_server", summary.virtualServersAdded), ("update_virtual_server", summary.virtualServersUpdated),
                ("delete_virtual_server", summary.virtualServersDeleted), ("add_real_server", summary.realServersAdded),
                ("update_real_server", summary.realServersUpdated), ("delete_real_server", summary.realServersDeleted),
                ("bind_address", report.addressesBound), ("unbind_address", report.addressesUnbound),
            ]
            for (kind, count) in done where count > 0 { operations(kind, "success").increment(by: count) }
            for failure in summary.failures {
                operations(Self.kind(of: failure.operation), "error").increment()
                netlinkError(failure.error.underlying.name).increment()
            }
        case .failure(let error):
            if let errno = Self.errnoName(of: error) { netlinkError(errno).increment() }
        }
    }

    private func operations(_ kind: String, _ result: String) -> Counter {
        Counter(label: MetricName.kernelOperations, dimensions: [("kind", kind), ("result", result)], factory: factory)
    }

    private func netlinkError(_ errno: String) -> Counter {
        Counter(label: MetricName.netlinkErrors, dimensions: [("errno", errno)], factory: factory)
    }

    static func kind(of operation: IPVSOperation) -> String {
        switch operation {
        case .addVirtualServer: "add_virtual_server"
        case .updateVirtualServer: "update_virtual_server"
        case .deleteVirtualServer: "delete_virtual_server"
        case .addRealServer: "add_real_server"
        case .updateRealServer: "update_real_server"
        case .deleteRealServer: "delete_real_server"
        }
    }

    static func errnoName(of error: any Error) -> String? {
        switch error {
        case let error as IPVSError: error.underlying.name
        case let error as NetlinkError: error.name
        default: nil
        }
    }
}

/// Metric names: kube-proxy's where the meaning is the same.
public enum MetricName {
    public static let syncDuration = "kubeproxy_sync_proxy_rules_duration_seconds"
    public static let lastSyncTimestamp = "kubeproxy_sync_proxy_rules_last_timestamp_seconds"
    public static let networkProgrammingDuration = "kubeproxy_network_programming_duration_seconds"
    public static let endpointChanges = "kubeproxy_sync_proxy_rules_endpoint_changes_total"
    public static let serviceChanges = "kubeproxy_sync_proxy_rules_service_changes_total"
    public static let kernelOperations = "kipvs_kernel_operations_total"
    public static let netlinkErrors = "kipvs_netlink_errors_total"
    public static let watchRestarts = "kipvs_watch_restarts_total"
}
