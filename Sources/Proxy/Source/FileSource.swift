import Foundation

/// Where the cluster's Services and EndpointSlices come from.
public protocol ClusterSource: AnyObject {
    /// For logs: `file:/etc/kipvs/services.yaml`.
    var name: String { get }
    /// nil while nothing changed (or the first complete state is not there yet); otherwise the
    /// new complete state, or why the source's content could not be used.
    func poll() -> Result<ClusterState, LoadError>?
}

/// Services and EndpointSlices from a manifest file or directory, re-read when anything in it changes.
public final class FileSource: ClusterSource {
    public let path: String
    private var fingerprint: [String]?

    public init(path: String) {
        self.path = path
    }

    public var name: String { "file:\(path)" }

    /// nil when nothing changed since the last call; otherwise the newly loaded state or why it could not be loaded.
    public func poll() -> Result<ClusterState, LoadError>? {
        let now = currentFingerprint()
        guard now != fingerprint else { return nil }
        fingerprint = now
        do {
            return .success(try ManifestLoader.load(paths: [path]))
        } catch {
            return .failure(error)
        }
    }

    /// Name, size, modification time and inode of every manifest file: a rename-into-place changes the inode.
    private func currentFingerprint() -> [String] {
        guard let files = try? ManifestLoader.manifestFiles(at: path) else { return ["missing"] }
        return files.map { file in
            var info = stat()
            guard stat(file, &info) == 0 else { return "\(file) missing" }
            return "\(file) \(info.st_size) \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec) \(info.st_ino)"
        }
    }
}
