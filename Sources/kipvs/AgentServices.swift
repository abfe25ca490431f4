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
        await loop.run(shouldStop: { Task.isShuttingDownGracefully || Task.isCancelled })
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
