import ArgumentParser
import Foundation
import KubernetesSource

/// `--source`: where Services and EndpointSlices come from.
struct SourceOptions: ParsableArguments {
    @Option(help: """
        Where Services and EndpointSlices come from: kubernetes (the API server; the default in a pod \
        or with --kubeconfig) or file:PATH (a manifest file or directory).
        """)
    var source: String?

    enum Choice: Equatable {
        case file(String)
        case kubernetes
    }

    func validate() throws { _ = try choice() }

    /// The source asked for; without `--source`, the API server when in a pod or given a kubeconfig.
    func choice(kubeconfigGiven: Bool = false,
                environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Choice {
        guard let source else {
            if kubeconfigGiven || !(environment["KUBERNETES_SERVICE_HOST"] ?? "").isEmpty { return .kubernetes }
            throw ValidationError("--source is needed outside a cluster: kubernetes (with --kubeconfig) or file:PATH")
        }
        if source == "kubernetes" { return .kubernetes }
        guard source.hasPrefix("file:"), source.count > 5 else {
            throw ValidationError("--source: expected kubernetes or file:PATH, got \(source)")
        }
        return .file(String(source.dropFirst(5)))
    }

    /// The manifest path, for commands that read files only.
    func path() throws -> String {
        guard case .file(let path) = try choice() else {
            throw ValidationError("--source: this command reads manifests: expected file:PATH")
        }
        return path
    }
}

/// How to reach the API server: kube-proxy's `--kubeconfig`, and a context within it.
struct KubernetesOptions: ParsableArguments {
    @Option(help: "A kubeconfig file for the API server (default: the pod's service account).")
    var kubeconfig: String?

    @Option(help: "The kubeconfig context to use (default: its current context).")
    var context: String?

    func validate() throws {
        if context != nil && kubeconfig == nil { throw ValidationError("--context needs --kubeconfig") }
    }

    func connection() throws -> ClusterConnection {
        do {
            if let kubeconfig { return try .kubeconfig(path: kubeconfig, context: context) }
            return try .inCluster()
        } catch let error as ConnectionError {
            throw ValidationFailure(error.description)
        }
    }
}
