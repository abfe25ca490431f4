import Foundation
import Netlink
import Testing
@testable import Proxy

/// How a manifest file is read, and how a file that cannot be is reported: by the call that
/// failed and its errno, never in Foundation's words.
@Suite struct FileSourceReadTests {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("kipvs-filesource-read-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    func message(_ result: Result<String, PathError>) -> String? {
        if case .failure(let error) = result { return error.message }
        return nil
    }

    /// Root reads any file, so a refused open is made up; its wording is the point.
    @Test func aRefusedOpenNamesTheCallAndTheErrno() {
        let error = SystemCallError(errno: .permissionDenied, operation: "open")
        #expect(ManifestLoader.unreadable(error).message == "cannot be read: open: Permission denied (EACCES)")
    }

    /// Foundation's own words name no errno; the one under them is used.
    @Test func anUnlistableDirectoryNamesTheErrno() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let refused = NSError(domain: NSCocoaErrorDomain, code: CocoaError.fileReadNoPermission.rawValue,
                              userInfo: [NSUnderlyingErrorKey: NSError(domain: NSPOSIXErrorDomain, code: Int(EACCES))])
        #expect(ManifestLoader.unlistable(refused) == "cannot be listed: Permission denied (EACCES)")
        try "".write(toFile: path("plain"), atomically: false, encoding: .utf8)
        #expect(throws: (any Error).self) {
            do {
                _ = try FileManager.default.contentsOfDirectory(atPath: path("plain"))
            } catch {
                #expect(ManifestLoader.unlistable(error) == "cannot be listed: Not a directory (ENOTDIR)")
                throw error
            }
        }
    }

    @Test func aMissingFile() {
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(message(ManifestLoader.read(path("missing.yaml"))) == "cannot be read: stat: No such file or directory (ENOENT)")
    }

    @Test func aPathThroughAFile() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        try "".write(toFile: path("plain"), atomically: false, encoding: .utf8)
        #expect(message(ManifestLoader.read(path("plain/cluster.yaml"))) == "cannot be read: stat: Not a directory (ENOTDIR)")
    }

    @Test func aLinkToItself() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createSymbolicLink(atPath: path("loop.yaml"), withDestinationPath: path("loop.yaml"))
        #expect(message(ManifestLoader.read(path("loop.yaml"))) == "cannot be read: stat: Too many levels of symbolic links (ELOOP)")
    }

    /// Neither is opened: a FIFO's open would wait for a writer.
    @Test func aDirectoryAndAFIFOAreNoRegularFiles() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createDirectory(atPath: path("sub.yaml"), withIntermediateDirectories: false)
        #expect(message(ManifestLoader.read(path("sub.yaml"))) == "is not a regular file")
        #expect(mkfifo(path("fifo.yaml"), 0o600) == 0)
        #expect(message(ManifestLoader.read(path("fifo.yaml"))) == "is not a regular file")
    }

    /// Through a link, as it was written; empty is text too (the source refuses it for having no objects).
    @Test func textIsReadWhole() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let text = String(repeating: "# a comment line of some length\n", count: 10_000) + "kind: Service\n"
        try text.write(toFile: path("a.yaml"), atomically: false, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: path("link.yaml"), withDestinationPath: "a.yaml")
        #expect(try ManifestLoader.read(path("link.yaml")).get() == text)
        try "".write(toFile: path("empty.yaml"), atomically: false, encoding: .utf8)
        #expect(try ManifestLoader.read(path("empty.yaml")).get() == "")
    }

    @Test func notUTF8() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data([0x6B, 0x69, 0x6E, 0x64, 0x3A, 0x20, 0xFF, 0x0A]).write(to: URL(fileURLWithPath: path("bad.yaml")))
        #expect(message(ManifestLoader.read(path("bad.yaml"))) == "is not UTF-8 text")
    }
}
