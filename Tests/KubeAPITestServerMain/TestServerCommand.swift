import ArgumentParser
import Foundation
import KubeAPIServer
import UnixSignals

/// `kube-api-test-server`: the test API server (`KubeAPIServer`) as a process for the guest's
/// scripts. It serves the API on loopback, writes a kubeconfig that points at it, and takes
/// objects and faults on an admin port (see `AdminServer`). Test tooling; plain HTTP, no
/// authentication. Stops on SIGTERM or SIGINT.
@main
struct TestServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kube-api-test-server",
        abstract: "A Kubernetes API server for tests: Services and EndpointSlices, list/watch, writes, faults on demand.",
        discussion: """
            Once both ports listen it writes the kubeconfig (if asked) and prints one line, \
            "api http://127.0.0.1:PORT admin http://127.0.0.1:PORT", on standard output. \
            Admin interface: POST /admin/apply (body: Services and EndpointSlices, JSON or YAML), \
            POST /admin/delete?kind=K&namespace=NS&name=N, POST /admin/fault?type=T (close-watches, \
            gone-event, gone-status, bookmark, stall, unstall, refuse[&seconds=N], accept, \
            fail&status=S[&count=N][&request=any|list|watch]), GET /admin/state.
            """)

    @Option(help: "Where the API is served: 127.0.0.1:PORT (loopback only; port 0 picks a free one).")
    var listen = "127.0.0.1:0"

    @Option(help: "Where the admin interface is served (default: the API's port + 1, or a free port).")
    var adminListen: String?

    @Option(help: "Write a kubeconfig for the API here once it listens.")
    var kubeconfigOut: String?

    func validate() throws {
        _ = try Self.loopbackPort(listen, flag: "--listen")
        if let adminListen { _ = try Self.loopbackPort(adminListen, flag: "--admin-listen") }
    }

    /// The port of `127.0.0.1:PORT`; nothing but loopback is served.
    static func loopbackPort(_ text: String, flag: String) throws -> Int {
        guard text.hasPrefix("127.0.0.1:"), let port = Int(text.dropFirst("127.0.0.1:".count)), (0...65535).contains(port) else {
            throw ValidationError("\(flag): expected 127.0.0.1:PORT, got \(text)")
        }
        return port
    }

    func run() async throws {
        let apiPort = try Self.loopbackPort(listen, flag: "--listen")
        try await KubeAPIServer.withServer(port: apiPort) { api in
            let adminPort = try adminListen.map { try Self.loopbackPort($0, flag: "--admin-listen") }
                ?? (api.port == 0 || apiPort == 0 ? 0 : api.port + 1)
            let admin = try await AdminServer.bind(port: adminPort, api: api)
            if let kubeconfigOut {
                try Data(Self.kubeconfig(server: api.url).utf8).write(to: URL(fileURLWithPath: kubeconfigOut), options: .atomic)
            }
            FileHandle.standardOutput.write(Data("api \(api.url) admin http://127.0.0.1:\(admin.port)\n".utf8))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await admin.run() }
                group.addTask {
                    for await _ in await UnixSignalsSequence(trapping: .sigterm, .sigint) { return }
                }
                try await group.next()
                group.cancelAll()
            }
        }
    }

    static func kubeconfig(server: String) -> String {
        """
        apiVersion: v1
        kind: Config
        clusters:
        - name: test
          cluster: {server: "\(server)"}
        users:
        - name: test
          user: {}
        contexts:
        - name: test
          context: {cluster: test, user: test}
        current-context: test

        """
    }
}
