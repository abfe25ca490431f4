import KubeAPIServer
import KubernetesSource
import Logging
import Observability
import Testing

/// At SIGTERM the service group cancels these services: each must end quietly, not with an error
/// that would make the agent exit as failed.
@Suite struct LifecycleTests {
    @Test func endpointServerEndsCleanlyWhenCancelled() async throws {
        let server = HTTPEndpointServer(address: BindAddress(host: "127.0.0.1", port: 0), routes: [:],
                                        logger: Logger(label: "kipvs-test"))
        let task = Task { try await server.run() }
        try await Task.sleep(for: .milliseconds(200))
        task.cancel()
        try await task.value
    }

    @Test func kubernetesSourceEndsCleanlyWhenCancelled() async throws {
        try await KubeAPIServer.withServer { api in
            let source = try KubernetesSource(connection: ClusterConnection(server: api.url), logger: Logger(label: "kipvs-test"))
            let task = Task { try await source.run() }
            try await until { api.openWatches == 2 }
            task.cancel()
            try await task.value
        }
    }
}
