import Foundation
import Logging
import Testing
@testable import Proxy

/// The file source as the sync loop drives it: polled only when it wakes the loop. Every change
/// here must reach the caller through wakes alone (inotify events, settle deadlines, background
/// reads done), or, without inotify, through the look every second.
@Suite struct FileSourceWatchTests {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("kipvs-filesource-watch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    /// A source on the system clock whose wakes release `woken`.
    func source(_ path: String, watching: FileSource.Watching = .inotify) -> (Applied, DispatchSemaphore) {
        var logger = Logger(label: "kipvs-test")
        logger.logLevel = .critical
        let source = FileSource(path: path, clock: .system, logger: logger, readsInBackground: true, watching: watching)
        let woken = DispatchSemaphore(value: 0)
        source.setWake { woken.signal() }
        return (Applied(source), woken)
    }

    /// Polls each time the source wakes the caller, until it answers; nil if it stops waking first.
    func answerOnWake(_ source: Applied, _ woken: DispatchSemaphore) -> Result<ClusterState, LoadError>? {
        // Generous: a loaded machine may take long; a source that never wakes fails the test, slowly.
        while woken.wait(timeout: .now() + .seconds(20)) == .success {
            if let answer = source.poll() { return answer }
        }
        return nil
    }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    func serviceNames(_ answer: Result<ClusterState, LoadError>?) -> [String]? {
        guard case .success(let state)? = answer else { return nil }
        return state.services.map(\.metadata.name).sorted()
    }

    static func services(_ names: String...) -> String { services(names) }

    static func services(_ names: [String]) -> String {
        names.enumerated().map { i, name in
            "apiVersion: v1\nkind: Service\nmetadata: {name: \(name)}\nspec: {clusterIP: 10.96.0.\(i + 1), ports: [{port: 80}]}\n"
        }.joined(separator: "---\n")
    }

    @Test func aChangedFileWakesTheCaller() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        try Self.services("a").write(toFile: path("a.yaml"), atomically: false, encoding: .utf8)
        let (source, woken) = source(directory.path)
        #expect(serviceNames(source.poll()) == ["a"])
        #expect(source.source.watcher?.usesInotify == true)

        // Written in place: the event is the close after writing.
        try Self.services("a", "b").write(toFile: path("a.yaml"), atomically: false, encoding: .utf8)
        #expect(serviceNames(answerOnWake(source, woken)) == ["a", "b"])
        // A new file, renamed into place.
        try Self.services("c").write(toFile: path(".c.yaml.tmp"), atomically: false, encoding: .utf8)
        try FileManager.default.moveItem(atPath: path(".c.yaml.tmp"), toPath: path("c.yaml"))
        #expect(serviceNames(answerOnWake(source, woken)) == ["a", "b", "c"])
        try FileManager.default.removeItem(atPath: path("c.yaml"))
        #expect(serviceNames(answerOnWake(source, woken)) == ["a", "b"])
    }

    /// A single file is watched through its directory: replaced by a rename, it is still seen.
    @Test func aSingleFileReplacedByARename() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = path("cluster.yaml")
        try Self.services("a").write(toFile: file, atomically: false, encoding: .utf8)
        let (source, woken) = source(file)
        #expect(serviceNames(source.poll()) == ["a"])
        for round in 0..<3 {
            let inode = try FileManager.default.attributesOfItem(atPath: file)[.systemFileNumber] as? Int
            let names = (0...round + 1).map { "s\($0)" }
            // Written to a new file, then renamed over the old one.
            try Self.services(names).write(toFile: file, atomically: true, encoding: .utf8)
            #expect(try FileManager.default.attributesOfItem(atPath: file)[.systemFileNumber] as? Int != inode, "a new file")
            #expect(serviceNames(answerOnWake(source, woken)) == names, "round \(round)")
        }
    }

    /// A mounted ConfigMap: each file is a link through `..data`, and an update swaps `..data` to a
    /// new directory and removes the old one. The files' own names never see an event.
    @Test(arguments: [false, true]) func aConfigMapUpdate(singleFile: Bool) throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let files = FileManager.default
        func publish(_ version: Int, _ text: String) throws {
            let data = "..2024_01_01_00_00_0\(version)"
            try files.createDirectory(atPath: path(data), withIntermediateDirectories: false)
            try text.write(toFile: path("\(data)/services.yaml"), atomically: false, encoding: .utf8)
            try files.createSymbolicLink(atPath: path("..data_tmp"), withDestinationPath: data)
            // The kubelet renames over the old link; removing it first makes the same events, and a moment without.
            if version > 1 { try files.removeItem(atPath: path("..data")) }
            try files.moveItem(atPath: path("..data_tmp"), toPath: path("..data"))
            if version > 1 { try files.removeItem(atPath: path("..2024_01_01_00_00_0\(version - 1)")) }
        }
        try publish(1, Self.services("a"))
        try files.createSymbolicLink(atPath: path("services.yaml"), withDestinationPath: "..data/services.yaml")
        let (source, woken) = source(singleFile ? path("services.yaml") : directory.path)
        #expect(serviceNames(source.poll()) == ["a"])
        try publish(2, Self.services("a", "b"))
        #expect(serviceNames(answerOnWake(source, woken)) == ["a", "b"])
        try publish(3, Self.services("b", "c"))
        #expect(serviceNames(answerOnWake(source, woken)) == ["b", "c"])
    }

    /// A file that links to a file in another directory: a change of the target is its change.
    @Test func aLinkToAnotherDirectory() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let elsewhere = directory.appendingPathComponent("elsewhere").path
        let manifests = directory.appendingPathComponent("manifests").path
        try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: false)
        try FileManager.default.createDirectory(atPath: manifests, withIntermediateDirectories: false)
        try Self.services("a").write(toFile: elsewhere + "/real.yaml", atomically: false, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: manifests + "/linked.yaml", withDestinationPath: elsewhere + "/real.yaml")
        let (source, woken) = source(manifests)
        #expect(serviceNames(source.poll()) == ["a"])
        try Self.services("a", "b").write(toFile: elsewhere + "/real.yaml", atomically: false, encoding: .utf8)
        #expect(serviceNames(answerOnWake(source, woken)) == ["a", "b"])
    }

    /// Without inotify, the look every second finds the change and wakes the caller.
    @Test func withoutInotifyEverySecond() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        try Self.services("a").write(toFile: path("a.yaml"), atomically: false, encoding: .utf8)
        let (source, woken) = source(directory.path, watching: .scanning)
        #expect(serviceNames(source.poll()) == ["a"])
        #expect(source.source.watcher?.usesInotify == false)
        try Self.services("a", "b").write(toFile: path("a.yaml"), atomically: false, encoding: .utf8)
        #expect(serviceNames(answerOnWake(source, woken)) == ["a", "b"])
        try Self.services("c").write(toFile: path("c.yaml"), atomically: false, encoding: .utf8)
        #expect(serviceNames(answerOnWake(source, woken)) == ["a", "b", "c"])
    }

    /// A path whose directory does not exist yet: refused at first, seen once it is written.
    @Test func aPathThatComesLater() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let later = directory.appendingPathComponent("later")
        let (source, woken) = source(later.appendingPathComponent("cluster.yaml").path)
        guard case .failure(let error)? = source.poll() else {
            Issue.record("the first answer is not a failure")
            return
        }
        #expect(error.problems.map(\.message) == ["no such file or directory"])
        #expect(source.source.watcher?.usesInotify == false, "nothing to watch: it looks every second")
        try FileManager.default.createDirectory(at: later, withIntermediateDirectories: false)
        try Self.services("a").write(toFile: later.appendingPathComponent("cluster.yaml").path, atomically: true, encoding: .utf8)
        #expect(serviceNames(answerOnWake(source, woken)) == ["a"])
    }

    /// A large drop is held; the source wakes the caller when the hold is due.
    @Test func aHeldDropWakesTheCallerWhenDue() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        try Self.services("a", "b", "c").write(toFile: path("a.yaml"), atomically: false, encoding: .utf8)
        let (source, woken) = source(directory.path)
        #expect(serviceNames(source.poll()) == ["a", "b", "c"])
        try Self.services("a").write(toFile: path("a.yaml"), atomically: false, encoding: .utf8)
        #expect(serviceNames(answerOnWake(source, woken)) == ["a"])
    }
}
