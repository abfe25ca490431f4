import Foundation
import Logging
import Testing
@testable import Proxy

/// A file that inotify says is whole (closed after writing, or renamed into place) is read on the
/// first poll after the wake, with the source's clock standing still; every other rule still holds.
@Suite struct FileSourceWholeTests {
    let directory: URL
    /// An hour behind: any deadline the source sets is already due, so its wake comes at once.
    let time = FakeTime(start: .now - .seconds(3600))

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("kipvs-filesource-whole-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// A source on the test's clock, driven by inotify, reading in place; its wakes release `woken`.
    func source(_ path: String) -> (Applied, DispatchSemaphore) {
        var logger = Logger(label: "kipvs-test")
        logger.logLevel = .critical
        let source = FileSource(path: path, clock: time.clock, logger: logger, readsInBackground: false, watching: .inotify)
        let woken = DispatchSemaphore(value: 0)
        source.setWake { woken.signal() }
        return (Applied(source), woken)
    }

    /// Lets every wake already due reach `woken` (those of every event so far, and of every
    /// deadline), and drops them: the next wake is a new one. How many there were.
    @discardableResult
    func dropPendingWakes(_ source: Applied, _ woken: DispatchSemaphore) -> Int {
        // A catch-up reads the events and wakes for them at the top of the watcher's round, before
        // a due deadline wakes; the second one is done only once the round of the first is over.
        _ = source.source.watcher?.stillWhole([:])
        _ = source.source.watcher?.stillWhole([:])
        var wakes = 0
        while woken.wait(timeout: .now()) == .success { wakes += 1 }
        return wakes
    }

    /// Once the watcher has read the events of what was done so far (a write wakes the source
    /// too, before its close does), polls once.
    func pollOnceTheEventsAreIn(_ source: Applied, _ woken: DispatchSemaphore) -> Result<ClusterState, LoadError>? {
        #expect(dropPendingWakes(source, woken) > 0, "woken")
        return source.poll()
    }

    /// Waits for the next wake (generously: a loaded machine may be slow) and polls once.
    func pollOnWake(_ source: Applied, _ woken: DispatchSemaphore) -> Result<ClusterState, LoadError>? {
        guard woken.wait(timeout: .now() + .seconds(20)) == .success else {
            Issue.record("no wake")
            return nil
        }
        return source.poll()
    }

    /// Written to a temporary name, then renamed over `file`.
    func renameIntoPlace(_ text: String, _ file: String) throws {
        let temporary = path(".cluster.yaml.tmp")
        try text.write(toFile: temporary, atomically: false, encoding: .utf8)
        try #require(rename(temporary, file) == 0, "rename")
    }

    func serviceNames(_ answer: Result<ClusterState, LoadError>?) -> [String]? {
        guard case .success(let state)? = answer else { return nil }
        return state.services.map(\.metadata.name).sorted()
    }

    static func services(_ count: Int) -> String {
        (0..<count).map { i in
            "apiVersion: v1\nkind: Service\nmetadata: {name: s\(i)}\nspec: {clusterIP: 10.96.0.\(i + 1), ports: [{port: 80}]}\n"
        }.joined(separator: "---\n")
    }

    static func names(_ count: Int) -> [String] { (0..<count).map { "s\($0)" }.sorted() }

    /// Written to a temporary name, then renamed over the file: read on the first poll after the wake.
    @Test(arguments: [false, true]) func aFileRenamedIntoPlace(singleFile: Bool) throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = path("cluster.yaml")
        try Self.services(2).write(toFile: file, atomically: false, encoding: .utf8)
        let (source, woken) = source(singleFile ? file : directory.path)
        #expect(serviceNames(source.poll()) == Self.names(2))
        let parsed = source.source.filesParsed
        for count in [3, 4] {
            dropPendingWakes(source, woken)
            let still = time.now
            try renameIntoPlace(Self.services(count), file)
            // The directory's listing is not read, a second time or at all: only the file.
            #expect(serviceNames(pollOnWake(source, woken)) == Self.names(count), "\(count) Services")
            #expect(time.now == still, "no settle wait")
        }
        #expect(source.source.filesParsed == parsed + 2)
    }

    /// Truncated and written in place, then closed: read at once.
    @Test(arguments: [false, true]) func aFileClosedAfterWriting(singleFile: Bool) throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = path("cluster.yaml")
        try Self.services(2).write(toFile: file, atomically: false, encoding: .utf8)
        let (source, woken) = source(singleFile ? file : directory.path)
        #expect(serviceNames(source.poll()) == Self.names(2))
        dropPendingWakes(source, woken)
        let still = time.now
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: Data(Self.services(3).utf8))
        try handle.close()
        #expect(serviceNames(pollOnceTheEventsAreIn(source, woken)) == Self.names(3))
        #expect(time.now == still, "no settle wait")
    }

    /// A file created in place: created, then closed after writing; the close finds it whole.
    @Test func aNewFileClosedAfterWriting() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        try Self.services(1).write(toFile: path("a.yaml"), atomically: false, encoding: .utf8)
        let (source, woken) = source(directory.path)
        #expect(serviceNames(source.poll()) == ["s0"])
        dropPendingWakes(source, woken)
        let still = time.now
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: b}\nspec: {clusterIP: 10.96.1.1, ports: [{port: 80}]}\n"
        try text.write(toFile: path("b.yaml"), atomically: false, encoding: .utf8)
        // Created and closed may come as one wake or two; the clock never moves, so only the close can answer.
        var answer: Result<ClusterState, LoadError>?
        for _ in 0..<100 where answer == nil {
            guard woken.wait(timeout: .now() + .seconds(20)) == .success else { break }
            answer = source.poll()
        }
        #expect(serviceNames(answer) == ["b", "s0"])
        #expect(time.now == still, "no settle wait")
    }

    /// Truncated to nothing and closed: whole, and refused at once; the last good state stays.
    @Test func aFileClosedEmptyIsRefused() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = path("cluster.yaml")
        try Self.services(2).write(toFile: file, atomically: false, encoding: .utf8)
        let (source, woken) = source(file)
        #expect(serviceNames(source.poll()) == Self.names(2))
        dropPendingWakes(source, woken)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
        try handle.truncate(atOffset: 0)
        try handle.close()
        guard case .failure(let error)? = pollOnceTheEventsAreIn(source, woken) else {
            Issue.record("the empty file was not refused at once")
            return
        }
        #expect(error.description == "\(file): has no objects (empty, or cut short while being written); the last good state stays")
        #expect(source.state.services.count == 2)
    }

    /// Renamed into place but ending mid-line: it still stands 2 s before it is read.
    @Test func aWholeFileEndingMidLineWaits() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = path("cluster.yaml")
        try Self.services(2).write(toFile: file, atomically: false, encoding: .utf8)
        let (source, woken) = source(file)
        #expect(serviceNames(source.poll()) == Self.names(2))
        dropPendingWakes(source, woken)
        var text = Self.services(3)
        text.removeLast()  // the newline
        try renameIntoPlace(text, file)
        #expect(pollOnWake(source, woken) == nil, "the first poll after the wake")
        time.advance(.milliseconds(1900))
        #expect(source.poll() == nil, "1.9 s")
        time.advance(.milliseconds(100))
        #expect(serviceNames(source.poll()) == Self.names(3), "2 s")
    }

    /// Renamed into place with more than half of the Services gone: held for 5 s all the same.
    @Test func aWholeLargeDropIsHeld() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = path("cluster.yaml")
        try Self.services(23).write(toFile: file, atomically: false, encoding: .utf8)
        let (source, woken) = source(file)
        #expect(serviceNames(source.poll()) == Self.names(23))
        dropPendingWakes(source, woken)
        try renameIntoPlace(Self.services(10), file)
        #expect(pollOnWake(source, woken) == nil, "held")
        time.advance(.milliseconds(4900))
        #expect(source.poll() == nil, "4.9 s")
        time.advance(.milliseconds(100))
        #expect(serviceNames(source.poll()) == Self.names(10), "5 s")
    }

    /// Closed after writing, then opened and written again, still open: the last event is a write,
    /// so the settle rule applies to what is there; the close that follows is whole again.
    @Test func aWriteAfterTheCloseSettles() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = path("cluster.yaml")
        try Self.services(2).write(toFile: file, atomically: false, encoding: .utf8)
        let (source, woken) = source(file)
        #expect(serviceNames(source.poll()) == Self.names(2))
        dropPendingWakes(source, woken)
        try Self.services(3).write(toFile: file, atomically: false, encoding: .utf8)
        let writer = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
        try writer.truncate(atOffset: 0)
        try writer.write(contentsOf: Data(Self.services(4).utf8))
        #expect(pollOnceTheEventsAreIn(source, woken) == nil, "written after the close")
        #expect(source.poll() == nil, "polled again, no time passed")
        time.advance(.milliseconds(100))
        #expect(serviceNames(source.poll()) == Self.names(4), "settled: taken as before")

        dropPendingWakes(source, woken)
        let more = "---\napiVersion: v1\nkind: Service\nmetadata: {name: t}\nspec: {clusterIP: 10.96.2.1, ports: [{port: 80}]}\n"
        try writer.write(contentsOf: Data(more.utf8))
        try writer.close()
        #expect(serviceNames(pollOnceTheEventsAreIn(source, woken)) == Self.names(4) + ["t"], "closed: read at once")
    }

    /// A read counts as whole only if the file had no event after the one that made it so, up to
    /// the end of the read: a write that the watcher has not yet read is read first.
    @Test func aWriteBeforeTheCheckIsSeen() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = path("a.yaml")
        try Self.services(1).write(toFile: file, atomically: false, encoding: .utf8)
        var logger = Logger(label: "kipvs-test")
        logger.logLevel = .critical
        let watcher = ManifestWatcher(scanner: ManifestScanner(root: directory.path), wake: WakeSlot(), logger: logger)
        defer { watcher.stop() }
        try Self.services(2).write(toFile: file, atomically: false, encoding: .utf8)
        _ = watcher.stillWhole([:])  // its events read
        let (_, paths, whole) = watcher.takeChanges()
        #expect(paths == [file])
        let mark = try #require(whole[file], "closed after writing: whole")
        #expect(watcher.stillWhole([file: mark]) == [file], "nothing since")

        let writer = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
        try writer.write(contentsOf: Data("# more\n".utf8))
        // Asked at once: the write's event may not have been read yet; it is, before the answer.
        #expect(watcher.stillWhole([file: mark]).isEmpty, "written since")
        try writer.close()
        _ = watcher.stillWhole([:])
        let (_, _, closed) = watcher.takeChanges()
        #expect(closed[file].map { $0 > mark } == true, "closed again: whole again, after a later event")
    }

    /// Without inotify there is no telling that a file is whole: a rename into place settles.
    @Test func withoutInotifyARenameSettles() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = path("cluster.yaml")
        try Self.services(2).write(toFile: file, atomically: false, encoding: .utf8)
        var logger = Logger(label: "kipvs-test")
        logger.logLevel = .critical
        let source = Applied(FileSource(path: file, clock: time.clock, logger: logger, readsInBackground: false, watching: .none))
        #expect(serviceNames(source.poll()) == Self.names(2))
        try renameIntoPlace(Self.services(3), file)
        #expect(source.poll() == nil, "first look")
        time.advance(.milliseconds(100))
        #expect(serviceNames(source.poll()) == Self.names(3), "settled")
    }
}
