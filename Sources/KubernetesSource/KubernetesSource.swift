import AsyncHTTPClient
import Logging
import Metrics
import NIOConcurrencyHelpers
import Proxy
import ServiceLifecycle

/// Services and EndpointSlices from the Kubernetes API, kept current by two reflectors (list,
/// then watch). `run()` drives them; `poll()` hands the sync loop a complete state once both lists
/// have completed, and again after every change. While the API is unreachable the last state stays.
/// Given the node's name, a third reflector watches that Node; as with kube-proxy, syncs do not
/// wait for it (a node without its object, or without the right to read it, still proxies).
public final class KubernetesSource: ClusterSource, ServiceLifecycle.Service, Sendable {
    public let connection: ClusterConnection
    public let settings: WatchSettings
    /// The node whose Node object is watched; nil watches none.
    public let nodeName: String?

    private let logger: Logger
    private let metrics: any MetricsFactory
    private let shared = NIOLockedValueBox(Shared())

    private struct Shared {
        var services = ReflectorSnapshot<Proxy.Service>(items: [:], hasSynced: false)
        var slices = ReflectorSnapshot<EndpointSlice>(items: [:], hasSynced: false)
        var nodes = ReflectorSnapshot<ClusterNode>(items: [:], hasSynced: false)
        /// Increases with every change; `polled` is its value at the last state handed out.
        var revision = 0
        var polled = -1
    }

    /// Fails when the connection's certificates or keys cannot be used.
    public init(connection: ClusterConnection, settings: WatchSettings = WatchSettings(), nodeName: String? = nil,
                logger: Logger, metrics: any MetricsFactory = MetricsSystem.factory) throws {
        self.connection = connection
        self.settings = settings
        self.nodeName = nodeName
        self.logger = logger
        self.metrics = metrics
        _ = try connection.tlsConfiguration()
    }

    public var name: String { "kubernetes:\(connection.server)" }

    public func poll() -> Result<ClusterState, LoadError>? {
        shared.withLockedValue { shared in
            guard shared.services.hasSynced, shared.slices.hasSynced, shared.revision != shared.polled else { return nil }
            shared.polled = shared.revision
            // Sorted, so that equal contents compare equal however they arrived.
            return .success(ClusterState(
                services: shared.services.items.sorted { $0.key < $1.key }.map(\.value),
                endpointSlices: shared.slices.items.sorted { $0.key < $1.key }.map(\.value),
                nodes: shared.nodes.items.sorted { $0.key < $1.key }.map(\.value)))
        }
    }

    /// Lists and watches until cancelled; then closes the HTTP client.
    public func run() async throws {
        let http = try APIClient.makeHTTPClient(for: connection, idleTimeout: settings.idleTimeout)
        var client = APIClient(http: http, connection: connection)
        client.headerTimeout = settings.headerTimeout
        let services = Reflector(resource: .services, client: client, settings: settings, logger: logger, metrics: metrics) {
            [shared] snapshot in shared.withLockedValue { $0.services = snapshot; $0.revision += 1 }
        }
        let slices = Reflector(resource: .endpointSlices, client: client, settings: settings, logger: logger, metrics: metrics) {
            [shared] snapshot in shared.withLockedValue { $0.slices = snapshot; $0.revision += 1 }
        }
        let nodes = nodeName.map { name in
            Reflector(resource: .node(named: name), client: client, settings: settings, logger: logger, metrics: metrics) {
                [shared] snapshot in shared.withLockedValue { $0.nodes = snapshot; $0.revision += 1 }
            }
        }
        await withDiscardingTaskGroup { group in
            group.addTask { await services.run() }
            group.addTask { await slices.run() }
            if let nodes { group.addTask { await nodes.run() } }
        }
        try await http.shutdown()
    }
}
