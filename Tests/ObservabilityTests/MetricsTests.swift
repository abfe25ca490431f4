import AsyncHTTPClient
import Foundation
import IPVS
import KubeAPIServer
import KubernetesSource
import Logging
import NIOConcurrencyHelpers
@testable import Observability
import Prometheus
import Proxy
import Testing

@Suite struct MetricsTests {
    static var logger: Logger {
        var logger = Logger(label: "kipvs-test")
        logger.logLevel = .critical
        return logger
    }

    static let web = Service(metadata: ObjectMeta(name: "web"), clusterIPs: [IPAddress("10.96.0.10")!],
                             ports: [Service.Port(port: 80, targetPort: .number(8080))])

    static func slice(_ addresses: [String]) -> EndpointSlice {
        EndpointSlice(metadata: ObjectMeta(name: "web-abc", labels: [WellKnown.serviceName: "web"]), addressType: .ipv4,
                      endpoints: addresses.map { EndpointSlice.Endpoint(addresses: [IPAddress($0)!]) },
                      ports: [EndpointSlice.Port(port: 8080)])
    }

    @Test func aSyncIsRecordedUnderKubeProxysNames() throws {
        let registry = PrometheusCollectorRegistry()
        let ipvs = FakeIPVS()
        let agent = Agent(ipvs: ipvs, network: FakeNodeNetwork(), node: NodeConfig(nodeName: "node-a"))
        let source = StaticSource()
        let loop = SyncLoop(agent: agent, source: source, minSyncPeriod: .zero, syncPeriod: .seconds(30), logger: Self.logger)
        loop.observers = [SyncMetrics(factory: PrometheusExport.factory(registry: registry))]

        source.state = ClusterState(services: [Self.web], endpointSlices: [Self.slice(["10.244.0.5"])])
        #expect(loop.runOnce())
        let first = registry.emitToString()
        for name in [MetricName.syncDuration, MetricName.lastSyncTimestamp, MetricName.networkProgrammingDuration,
                     MetricName.endpointChanges, MetricName.serviceChanges, MetricName.kernelOperations] {
            #expect(first.contains("# TYPE \(name) "), "\(name) missing")
        }
        #expect(first.contains(#"kipvs_kernel_operations_total{kind="add_virtual_server",result="success"} 1"#))
        #expect(first.contains(#"kipvs_kernel_operations_total{kind="add_real_server",result="success"} 1"#))
        #expect(first.contains("kubeproxy_sync_proxy_rules_service_changes_total 1"))
        #expect(first.contains("kubeproxy_sync_proxy_rules_endpoint_changes_total 1"))
        #expect(first.contains("kubeproxy_sync_proxy_rules_duration_seconds_count 1"))
        #expect(first.contains("kubeproxy_network_programming_duration_seconds_count 1"))

        // The kernel refuses the next real server: the failure and its errno are counted.
        ipvs.failure = { operation in
            if case .addRealServer = operation { return .notPermitted }
            return nil
        }
        source.state = ClusterState(services: [Self.web], endpointSlices: [Self.slice(["10.244.0.5", "10.244.0.6"])])
        #expect(!loop.runOnce())
        let second = registry.emitToString()
        #expect(second.contains(#"kipvs_kernel_operations_total{kind="add_real_server",result="error"} 1"#))
        #expect(second.contains(#"kipvs_netlink_errors_total{errno="EPERM"} 1"#))
        #expect(second.contains("kubeproxy_sync_proxy_rules_endpoint_changes_total 2"))
        #expect(second.contains("kubeproxy_sync_proxy_rules_duration_seconds_count 2"))
        // Not yet in the kernel: no programming latency for it.
        #expect(second.contains("kubeproxy_network_programming_duration_seconds_count 1"))
    }

    @Test func changesAreCountedPerObject() {
        let registry = PrometheusCollectorRegistry()
        let metrics = SyncMetrics(factory: PrometheusExport.factory(registry: registry))
        let a = Self.slice(["10.0.0.1"])
        var b = a
        b.metadata.name = "other"
        let changes = ClusterChanges(services: [ObjectName(Self.web.metadata): nil],
                                     endpointSlices: [ObjectName(a.metadata): a, ObjectName(b.metadata): b])
        metrics.sourceChanged(changes, objects: ClusterObjects())
        let text = registry.emitToString()
        #expect(text.contains("kubeproxy_sync_proxy_rules_service_changes_total 1"))
        #expect(text.contains("kubeproxy_sync_proxy_rules_endpoint_changes_total 2"))
    }

    /// The whole chain: API server → source → sync with FakeIPVS → /metrics and /healthz over HTTP.
    @Test func endpointsServeAfterASyncFromTheAPI() async throws {
        let registry = PrometheusCollectorRegistry()
        let factory = PrometheusExport.factory(registry: registry)
        try await KubeAPIServer.withServer { server in
            server.put(.services, Objects.service("web", clusterIP: "10.96.0.10"))
            server.put(.endpointslices, Objects.endpointSlice("web-abc", service: "web", addresses: ["10.244.0.5"]))
            var settings = WatchSettings()
            settings.backoff = Backoff(initial: .milliseconds(50), maximum: .milliseconds(300))
            let source = try KubernetesSource(connection: ClusterConnection(server: server.url), settings: settings,
                                              logger: Self.logger, metrics: factory)
            let agent = Agent(ipvs: FakeIPVS(), network: FakeNodeNetwork(), node: NodeConfig(nodeName: "node-a"))
            let loop = SyncLoop(agent: agent, source: source, minSyncPeriod: .zero, syncPeriod: .seconds(30), logger: Self.logger)
            let health = HealthMonitor(syncPeriod: .seconds(30))
            loop.observers = [health, SyncMetrics(factory: factory)]
            let ports = NIOLockedValueBox<[String: Int]>([:])
            let endpoints = [
                HTTPEndpointServer(address: BindAddress(host: "127.0.0.1", port: 0), routes: ["/healthz": health.healthz],
                                   logger: Self.logger) { port in ports.withLockedValue { $0["healthz"] = port } },
                HTTPEndpointServer(address: BindAddress(host: "127.0.0.1", port: 0),
                                   routes: ["/metrics": { PrometheusExport.response(registry) }],
                                   logger: Self.logger) { port in ports.withLockedValue { $0["metrics"] = port } },
            ]
            let http = HTTPClient(eventLoopGroupProvider: .singleton)
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await source.run() }
                    for endpoint in endpoints { group.addTask { try await endpoint.run() } }
                    defer { group.cancelAll() }

                    try await until("first sync") { loop.runOnce() }
                    try await until("watching") { server.openWatches == 2 }
                    server.closeWatches()
                    try await until("watches resumed") { server.requests.filter { $0.contains("watch=1") }.count >= 4 }
                    try await until("endpoints listening") { ports.withLockedValue { $0.count } == 2 }
                    let (healthzPort, metricsPort) = ports.withLockedValue { ($0["healthz"]!, $0["metrics"]!) }

                    let healthz = try await http.get("http://127.0.0.1:\(healthzPort)/healthz")
                    #expect(healthz.status == 200)
                    #expect(healthz.body.contains("\"lastUpdated\""))
                    let missing = try await http.get("http://127.0.0.1:\(healthzPort)/metrics")
                    #expect(missing.status == 404)

                    let metrics = try await http.get("http://127.0.0.1:\(metricsPort)/metrics")
                    #expect(metrics.status == 200)
                    for name in [MetricName.syncDuration, MetricName.lastSyncTimestamp, MetricName.networkProgrammingDuration,
                                 MetricName.endpointChanges, MetricName.serviceChanges, MetricName.kernelOperations,
                                 MetricName.watchRestarts] {
                        #expect(metrics.body.contains("# TYPE \(name) "), "\(name) missing")
                    }
                    #expect(metrics.body.contains(#"kipvs_watch_restarts_total{resource="services",reason="closed"}"#)
                            || metrics.body.contains(#"kipvs_watch_restarts_total{reason="closed",resource="services"}"#))
                }
            } catch {
                // Shut down whatever happened, or the client traps when released.
                try await http.shutdown()
                throw error
            }
            try await http.shutdown()
        }
    }
}

extension HTTPClient {
    func get(_ url: String) async throws -> (status: Int, body: String) {
        let response = try await execute(HTTPClientRequest(url: url), timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), String(buffer: body))
    }
}

/// Waits (at most 15 s) until `condition` holds.
func until(_ what: String = "condition", _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(60)
    while !condition() {
        guard ContinuousClock.now < deadline else { throw TimedOut(what: what) }
        try await Task.sleep(for: .milliseconds(20))
    }
}

struct TimedOut: Error {
    var what: String
}
