import ArgumentParser
import Foundation
import KubernetesSource
import Logging
import Proxy

/// Where `kipvs status --services` reads Services and EndpointSlices: the same choices as `run`,
/// asked for only with `--services`, so that plain `kipvs status` needs none.
struct ServiceSourceOptions: ParsableArguments {
    @Option(help: "With --services: kubernetes or file:PATH, as for run (default: kubernetes in a pod or with --kubeconfig).")
    var source: String?

    @Option(help: "With --services and the kubernetes source: a kubeconfig file for the API server.")
    var kubeconfig: String?

    @Option(help: "With --services: the kubeconfig context to use (default: its current context).")
    var context: String?

    /// The cluster's objects now: a file read once, or one complete list from the API server.
    func cluster(kubeconfig fileKubeconfig: String?) async throws -> ClusterState {
        // run's own option groups, filled in here: their checks and messages are the same.
        var source = SourceOptions()
        source.source = self.source
        var kubernetes = KubernetesOptions()
        kubernetes.kubeconfig = self.kubeconfig ?? fileKubeconfig
        kubernetes.context = context
        try kubernetes.validate()
        switch try source.choice(kubeconfigGiven: kubernetes.kubeconfig != nil) {
        case .file(let path):
            return try Self.load(path)
        case .kubernetes:
            return try await Self.list(from: kubernetes.connection())
        }
    }

    static func load(_ path: String) throws -> ClusterState {
        do {
            return try ManifestLoader.load(paths: [path])
        } catch {
            throw ValidationFailure("status: \(error)")
        }
    }

    /// One complete list of Services and EndpointSlices: the reflectors run until both have listed.
    static func list(from connection: ClusterConnection, timeout: Duration = .seconds(30)) async throws -> ClusterState {
        // Standard output carries the report: the source's own warnings go to standard error.
        var logger = Logger(label: "kipvs") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .warning
        let api = try KubernetesSource(connection: connection, logger: logger)
        return try await withThrowingTaskGroup(of: ClusterState?.self) { group in
            group.addTask {
                try await api.run()
                return nil
            }
            group.addTask {
                let clock = ContinuousClock()
                let deadline = clock.now + timeout
                while clock.now < deadline {
                    switch api.poll() {
                    case .success(let changes)?: return ClusterState().updated(with: changes)
                    case .failure(let error)?: throw ValidationFailure("status: \(api.name): \(error)")
                    case nil: try await Task.sleep(for: .milliseconds(100))
                    }
                }
                throw ValidationFailure("status: no complete list of Services and EndpointSlices from \(api.name) within \(timeout)")
            }
            defer { group.cancelAll() }
            while let next = try await group.next() {
                if let state = next { return state }
            }
            throw ValidationFailure("status: \(api.name): the API source stopped before listing")
        }
    }
}

extension StatusCommand {
    func showServices() async throws {
        let config = try nodeOptions.configuration()
        let cluster = try await serviceSource.cluster(kubeconfig: config.kubeconfig)
        print(try nodeOptions.agent(config).serviceStatus(cluster), terminator: "")
    }
}
