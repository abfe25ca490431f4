import Foundation

extension ClusterConnection {
    /// Where a pod finds its service account's token and the cluster's CA.
    public static let serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

    /// The API server as a pod sees it: `KUBERNETES_SERVICE_HOST`/`_PORT`, the mounted token
    /// (re-read when rotated) and CA.
    public static func inCluster(environment: [String: String] = ProcessInfo.processInfo.environment,
                                 directory: String = serviceAccountDirectory) throws -> ClusterConnection {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty,
              let port = environment["KUBERNETES_SERVICE_PORT"], !port.isEmpty else {
            throw ConnectionError("not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set")
        }
        let tokenPath = "\(directory)/token"
        guard FileManager.default.isReadableFile(atPath: tokenPath) else {
            throw ConnectionError("not in a cluster: cannot read \(tokenPath)")
        }
        let caPath = "\(directory)/ca.crt"
        guard let ca = FileManager.default.contents(atPath: caPath) else {
            throw ConnectionError("cannot read \(caPath)")
        }
        // An IPv6 service host needs brackets in a URL.
        let authority = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        return ClusterConnection(server: "https://\(authority)", credentials: .bearer(BearerToken(file: tokenPath)),
                                 certificateAuthority: Array(ca))
    }
}
