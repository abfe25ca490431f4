import Foundation

extension ManifestLoader {
    /// File names a directory load reads.
    public static let manifestExtensions: Set<String> = ["yaml", "yml", "json"]

    /// Loads files and directories as one union. A directory contributes its `*.yaml`, `*.yml` and
    /// `*.json` files, not recursively, skipping names that start with a dot (a mounted ConfigMap's
    /// `..data` links and editors' temporary files). Any problem anywhere fails the whole load,
    /// so the caller keeps its last good state.
    public static func load(paths: [String]) throws(LoadError) -> ClusterState {
        var collector = ManifestCollector()
        for path in paths {
            let files: [String]
            do {
                files = try manifestFiles(at: path)
            } catch let error as PathError {
                collector.problem(in: path, error.message)
                continue
            } catch {
                collector.problem(in: path, error.localizedDescription)
                continue
            }
            for file in files {
                guard let data = FileManager.default.contents(atPath: file) else {
                    collector.problem(in: file, "cannot be read")
                    continue
                }
                guard let text = String(data: data, encoding: .utf8) else {
                    collector.problem(in: file, "is not UTF-8 text")
                    continue
                }
                collector.add(text, source: file)
            }
        }
        return try collector.result()
    }

    /// The manifest files `path` stands for, in name order: itself if it is a file.
    public static func manifestFiles(at path: String) throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw PathError(message: "no such file or directory")
        }
        guard isDirectory.boolValue else { return [path] }
        let base = URL(fileURLWithPath: path)
        return try FileManager.default.contentsOfDirectory(atPath: path)
            .filter { !$0.hasPrefix(".") && manifestExtensions.contains(($0 as NSString).pathExtension.lowercased()) }
            .sorted()
            .map { base.appendingPathComponent($0).path }
            .filter { file in
                var isDirectory: ObjCBool = false
                return FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory) && !isDirectory.boolValue
            }
    }
}

private struct PathError: Error {
    var message: String
}
