import Foundation
import Netlink

/// What one look at a manifest path saw: enough to tell that it changed since.
enum ManifestLook: Hashable, Sendable {
    /// A file: what `stat` says of it (through a symbolic link, of its target; a rename into place
    /// changes the inode), whether its YAML may end mid-line, and where it points if it is a link.
    case file(LibC.FileStatus, endsMidLine: Bool, linkTarget: String?)
    /// Nothing there; in a directory, a subdirectory counts as nothing.
    case absent
    /// The source's own path, when it is a directory.
    case directory
    /// The path could not be looked at, or the directory not listed; the message says why.
    case unreadable(String)

    /// YAML whose last byte is not a newline.
    var endsMidLine: Bool {
        if case .file(_, let endsMidLine, _) = self { return endsMidLine }
        return false
    }

    var linkTarget: String? {
        if case .file(_, _, let target) = self { return target }
        return nil
    }
}

/// Looks at the manifest files a source's path stands for: the path itself and, when it is a
/// directory, the files a directory load reads (see `ManifestLoader.manifestFiles`).
struct ManifestScanner: Sendable {
    /// The source's path, as given.
    let root: String
    /// The root made absolute: a directory's files are named under it, as a directory load names them.
    let directory: String

    init(root: String) {
        self.root = root
        directory = URL(fileURLWithPath: root).path
    }

    /// The path of a file named `name` in the root directory.
    func path(of name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    /// The root and, when it is a directory, every manifest file in it. `previous` spares a second
    /// look at the last byte of files whose size, modification time and inode are unchanged.
    func lookAtEverything(previous: [String: ManifestLook]) -> [String: ManifestLook] {
        let rootLook = look(at: root, previous: previous[root])
        var looks = [root: rootLook]
        guard rootLook == .directory else { return looks }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: root)
        } catch {
            looks[root] = .unreadable(ManifestLoader.unlistable(error))
            return looks
        }
        for name in names where ManifestLoader.isManifestName(name) {
            let path = path(of: name)
            let look = look(at: path, previous: previous[path])
            if look != .absent { looks[path] = look }
        }
        return looks
    }

    /// One path: the root, or a file in the root directory.
    func look(at path: String, previous: ManifestLook?) -> ManifestLook {
        var status: LibC.FileStatus
        var target: String?
        do throws(SystemCallError) {
            status = try LibC.linkStatus(ofFile: path)
            if status.isSymbolicLink {
                status = try LibC.status(ofFile: path)
                target = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
            }
        } catch where error.errno == .noSuchFileOrDirectory || error.errno == .notDirectory {
            return .absent  // a link to nothing, too
        } catch {
            return .unreadable("cannot be looked at: \(error.errno) (\(error.errno.name))")
        }
        if status.isDirectory { return path == root ? .directory : .absent }
        let endsMidLine: Bool
        if case .file(let before, let known, _)? = previous, before == status {
            endsMidLine = known
        } else {
            endsMidLine = Self.endsMidLine(path, status)
        }
        return .file(status, endsMidLine: endsMidLine, linkTarget: target)
    }

    private static func endsMidLine(_ path: String, _ status: LibC.FileStatus) -> Bool {
        // YAML only: JSON cut short does not parse. Not a FIFO: opening one waits for a writer.
        guard status.isRegularFile, status.size > 0, !path.lowercased().hasSuffix(".json"),
              let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }  // read-only: closing cannot lose anything
        // A last byte that cannot be read counts as a newline: the read that follows reports the file.
        guard (try? handle.seek(toOffset: UInt64(status.size - 1))) != nil, let last = try? handle.read(upToCount: 1) else {
            return false
        }
        return last != Data([UInt8(ascii: "\n")])
    }
}
