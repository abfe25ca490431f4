import Foundation
import Netlink

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
                collector.problem(in: path, unlistable(error))
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
        let read: LibC.BoundedRead
        do throws(SystemCallError) {
            read = try LibC.readRegularFile(file, limit: TextLimits.fileBytes)
        } catch {
            return .failure(unreadable(error))
        }
        guard read.status.isRegularFile else { return .failure(PathError(message: "is not a regular file")) }
        guard read.status.size <= TextLimits.fileBytes else {
            return .failure(PathError(message: "is \(read.status.size) bytes; manifests over \(TextLimits.fileBytes >> 20) MiB are refused"))
        }
        guard let bytes = read.bytes, bytes.count <= TextLimits.fileBytes else {
            return .failure(PathError(message: "is over \(TextLimits.fileBytes >> 20) MiB; manifests that large are refused"))
        }
        guard let text = String(bytes: bytes, encoding: .utf8) else { return .failure(PathError(message: "is not UTF-8 text")) }
        return .success(text)
    }

    /// A file that cannot be read, in the words of the call that failed:
    /// `cannot be read: open: Permission denied (EACCES)`.
    static func unreadable(_ error: SystemCallError) -> PathError {
        PathError(message: "cannot be read: \(error)")
    }

    /// A directory that cannot be listed, by the errno under Foundation's error (whose own words
    /// name neither): `cannot be listed: Permission denied (EACCES)`.
    static func unlistable(_ error: any Error) -> String {
        // A POSIXError on Linux, an NSError elsewhere: either bridges.
        guard let underlying = ((error as NSError).userInfo[NSUnderlyingErrorKey] as? any Error).map({ $0 as NSError }),
              underlying.domain == NSPOSIXErrorDomain else {
            return "cannot be listed: \(error.localizedDescription)"
        }
        let code = Errno(rawValue: Int32(underlying.code))
        return "cannot be listed: \(code) (\(code.name))"
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
