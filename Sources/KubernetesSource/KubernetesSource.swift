import AsyncHTTPClient
import Logging
import Metrics
import NIOConcurrencyHelpers
import Proxy
import ServiceLifecycle

/// Services and EndpointSlices from the Kubernetes API, kept current by two reflectors (list,
/// then watch). `run()` drives them; `poll()` hands the sync loop every object once both lists have
/// completed, and then the objects that changed. While the API is unreachable nothing changes.
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
        /// Changes not yet handed out.
        var pending = ClusterChanges()
        var servicesSynced = false
        var slicesSynced = false
        var wake: (@Sendable () -> Void)?
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

    public func poll() -> Result<ClusterChanges, LoadError>? {
        shared.withLockedValue { shared in
            guard shared.servicesSynced, shared.slicesSynced, !shared.pending.isEmpty else { return nil }
            defer { shared.pending = ClusterChanges() }
            return .success(shared.pending)
        }
    }

    public func setWake(_ wake: @escaping @Sendable () -> Void) {
        shared.withLockedValue { $0.wake = wake }
    }

    /// Takes a reflector's changes in, and wakes the sync loop once there is a complete state.
    private func receive(_ apply: (inout Shared) -> Void) {
        let wake = shared.withLockedValue { shared -> (@Sendable () -> Void)? in
            apply(&shared)
            return shared.servicesSynced && shared.slicesSynced && !shared.pending.isEmpty ? shared.wake : nil
        }
        wake?()
    }

    /// Lists and watches until cancelled; then closes the HTTP client.
    public func run() async throws {
        let http = try APIClient.makeHTTPClient(for: connection, idleTimeout: settings.idleTimeout)
        var client = APIClient(http: http, connection: connection)
        client.headerTimeout = settings.headerTimeout
        client.maximumBodySize = settings.maximumPageBytes
        let services = Reflector(resource: .services, client: client, settings: settings, logger: logger, metrics: metrics) {
            [self] update in receive { shared in
                for (key, service) in update.changes { shared.pending.services[ObjectName(key: key)] = .some(service) }
                shared.servicesSynced = shared.servicesSynced || update.hasSynced
            }
        }
        let slices = Reflector(resource: .endpointSlices, client: client, settings: settings, logger: logger, metrics: metrics) {
            [self] update in receive { shared in
                for (key, slice) in update.changes { shared.pending.endpointSlices[ObjectName(key: key)] = .some(slice) }
                shared.slicesSynced = shared.slicesSynced || update.hasSynced
            }
        }
        let nodes = nodeName.map { name in
            Reflector(resource: .node(named: name), client: client, settings: settings, logger: logger, metrics: metrics) {
                [self] update in receive { shared in
                    for (key, node) in update.changes { shared.pending.nodes[ObjectName(key: key).name] = .some(node) }
                }
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

extension ObjectName {
    /// From a reflector's key, `namespace/name`.
    init(key: String) {
        let parts = key.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        self = parts.count == 2 ? ObjectName(namespace: String(parts[0]), name: String(parts[1]))
                                : ObjectName(namespace: "", name: key)
    }
}
