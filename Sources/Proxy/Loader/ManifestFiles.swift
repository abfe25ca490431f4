import Foundation

extension ManifestLoader {
    /// File names a directory load reads.
    public static let manifestExtensions: Set<String> = ["yaml", "yml", "json"]

    /// Loads files and directories as one union. A directory contributes its `*.yaml`, `*.yml` and
    /// `*.json` files, not recursively, skipping names that start with a dot (a mounted ConfigMap's
    /// `..data` links and editors' temporary files). Any problem anywhere fails the whole load,
    /// so the caller keeps its last good state.
    public static func load(paths: [String]) throws(LoadError) -> ClusterState {
        try collect(paths: paths).result()
    }

    /// The files read, for callers that look at more than the state (see `FileSource`).
    static func collect(paths: [String]) -> ManifestCollector {
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
                switch read(file) {
                case .success(let text): collector.add(text, source: file)
                case .failure(let error): collector.problem(in: file, error.message)
                }
            }
        }
        return collector
    }

    /// A manifest file's text, read no further than the size limit: a file that grows while it
    /// is read, or a device that never ends, is refused rather than read without bound.
    static func read(_ file: String) -> Result<String, PathError> {
        let attributes: [FileAttributeKey: Any]
        let handle: FileHandle
        do {
            attributes = try FileManager.default.attributesOfItem(atPath: URL(fileURLWithPath: file).resolvingSymlinksInPath().path)
            guard attributes[.type] as? FileAttributeType == .typeRegular else {
                return .failure(PathError(message: "is not a regular file"))
            }
            let size = (attributes[.size] as? NSNumber)?.intValue ?? 0
            guard size <= TextLimits.fileBytes else {
                return .failure(PathError(message: "is \(size) bytes; manifests over \(TextLimits.fileBytes >> 20) MiB are refused"))
            }
            handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: file))
        } catch {
            return .failure(PathError(message: "cannot be read: \(error.localizedDescription)"))
        }
        defer { try? handle.close() }  // read-only: closing cannot lose anything
        let data: Data
        do {
            data = try handle.read(upToCount: TextLimits.fileBytes + 1) ?? Data()
        } catch {
            return .failure(PathError(message: "cannot be read: \(error.localizedDescription)"))
        }
        guard data.count <= TextLimits.fileBytes else {
            return .failure(PathError(message: "is over \(TextLimits.fileBytes >> 20) MiB; manifests that large are refused"))
        }
        guard let text = String(data: data, encoding: .utf8) else { return .failure(PathError(message: "is not UTF-8 text")) }
        return .success(text)
    }

    /// Whether a directory load reads a file of this name: `*.yaml`, `*.yml` or `*.json`, not
    /// starting with a dot.
    static func isManifestName(_ name: String) -> Bool {
        !name.hasPrefix(".") && manifestExtensions.contains((name as NSString).pathExtension.lowercased())
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
            .filter(isManifestName)
            .sorted()
            .map { base.appendingPathComponent($0).path }
            .filter { file in
                var isDirectory: ObjCBool = false
                return FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory) && !isDirectory.boolValue
            }
    }
}

struct PathError: Error {
    var message: String
}
