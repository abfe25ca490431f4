import Logging
import Observability
import Proxy
import ServiceLifecycle

/// The sync loop as a service: it stops between two syncs when a graceful shutdown starts, and
/// leaves the kernel state in place so traffic keeps flowing across a restart.
/// Unchecked: the loop is used only by `run()`, on the one task the service group gives it.
final class SyncLoopService: ServiceLifecycle.Service, @unchecked Sendable {
    private let loop: SyncLoop

    init(loop: SyncLoop) {
        self.loop = loop
    }

    func run() async {
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await loop.run()
            } onGracefulShutdown: { [loop] in
                loop.stop()
            }
        } onCancel: { [loop] in
            loop.stop()
        }
    }
}

/// A service with nothing to finish: cancelled as soon as a graceful shutdown starts.
struct CancelledOnShutdown<Base: ServiceLifecycle.Service>: ServiceLifecycle.Service {
    let base: Base

    init(_ base: Base) {
        self.base = base
    }

    func run() async throws {
        try await cancelWhenGracefulShutdown { try await base.run() }
    }
}

/// The health-check node ports of `agent`'s Services: the observer to add to the sync loop, and the
/// service that owns the listeners. Every port answers 503 while syncs are overdue; as with
/// kube-proxy, the node's own state does not count there (its local endpoints do).
func healthCheckNodePorts(agent: Agent, health: HealthMonitor, logger: Logger)
    -> (observer: any SyncObserver, service: HealthCheckServer) {
    let server = HealthCheckServer(proxyHealthy: { health.isSyncHealthy }, logger: logger)
    return (HealthCheckNodePortUpdater(agent: agent, server: server, logger: logger), server)
}
