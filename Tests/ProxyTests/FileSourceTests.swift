import Foundation
import Logging
import Testing
@testable import Proxy

/// Time that moves only when a test moves it (or when the source sleeps).
final class FakeTime: @unchecked Sendable {
    private let lock = NSLock()
    private var current: ContinuousClock.Instant

    /// `start` in the past makes every deadline the source sets one that a real clock has passed.
    init(start: ContinuousClock.Instant = .now) { current = start }

    var now: ContinuousClock.Instant { lock.withLock { current } }

    func advance(_ duration: Duration) { lock.withLock { current += duration } }

    var clock: SourceClock { SourceClock(now: { self.now }, sleep: { self.advance($0) }) }
}

/// A source's answers as the caller sees them: its changes applied to the state so far.
final class Applied {
    let source: FileSource
    private(set) var state = ClusterState()

    init(_ source: FileSource) { self.source = source }

    func poll() -> Result<ClusterState, LoadError>? {
        pollChanges().map { answer in answer.map { _ in state } }
    }

    /// The source's own answer; its changes are applied on the way.
    func pollChanges() -> Result<ClusterChanges, LoadError>? {
        let answer = source.poll()
        if case .success(let changes)? = answer { state = state.applying(changes) }
        return answer
    }
}

extension ClusterState {
    /// This state with `changes` made, objects in name order.
    func applying(_ changes: ClusterChanges) -> ClusterState {
        func apply<Object, Key: Hashable & Comparable>(_ objects: [Object], _ changes: [Key: Object?],
                                                       key: (Object) -> Key) -> [Object] {
            var byKey = Dictionary(objects.map { (key($0), $0) }, uniquingKeysWith: { _, last in last })
            for (name, object) in changes { byKey[name] = object }
            return byKey.sorted { $0.key < $1.key }.map(\.value)
        }
        return ClusterState(services: apply(services, changes.services) { ObjectName($0.metadata) },
                            endpointSlices: apply(endpointSlices, changes.endpointSlices) { ObjectName($0.metadata) },
                            nodes: apply(nodes, changes.nodes) { $0.name })
    }
}

/// The file source driven by hand: files written as writers write them, time moved by the test.
@Suite struct FileSourceTests {
    let directory: URL
    let file: URL
    let time = FakeTime()

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("kipvs-filesource-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        file = directory.appendingPathComponent("cluster.yaml")
    }

    func source(_ path: String? = nil) -> Applied {
        var logger = Logger(label: "kipvs-test")
        logger.logLevel = .critical
        return Applied(FileSource(path: path ?? file.path, clock: time.clock, logger: logger, readsInBackground: false))
    }

    static func services(_ count: Int, from first: Int = 0) -> String {
        (first..<first + count).map { i in
            "apiVersion: v1\nkind: Service\nmetadata: {name: s\(i)}\nspec: {clusterIP: 10.96.0.\(i + 1), ports: [{port: 80}]}\n"
        }.joined(separator: "---\n")
    }

    /// As `kubectl get … > file` does: the file is truncated, then written, in place.
    func rewrite(_ text: String) throws {
        let handle = try FileHandle(forWritingTo: file)
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: Data(text.utf8))
        try handle.close()
    }

    func truncate() throws {
        let handle = try FileHandle(forWritingTo: file)
        try handle.truncate(atOffset: 0)
        try handle.close()
    }

    /// Polls as the sync loop does, every 200 ms, `count` times; returns every answer.
    func pollEvery200ms(_ source: Applied, _ count: Int) -> [Result<ClusterState, LoadError>] {
        var answers: [Result<ClusterState, LoadError>] = []
        for _ in 0..<count {
            if let answer = source.poll() { answers.append(answer) }
            time.advance(.milliseconds(200))
        }
        return answers
    }

    func serviceCount(_ answer: Result<ClusterState, LoadError>?) -> Int? {
        if case .success(let state)? = answer { return state.services.count }
        return nil
    }

    @Test func firstPollWaitsForTheFilesAndReads() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        try Self.services(3).write(to: file, atomically: true, encoding: .utf8)
        #expect(serviceCount(source().poll()) == 3)
    }

    /// A change is taken once the file has looked the same twice, 100 ms or more apart.
    @Test func aChangeIsTakenOnceTheFileSettles() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        try Self.services(3).write(to: file, atomically: true, encoding: .utf8)
        let source = source()
        _ = source.poll()
        try rewrite(Self.services(4))
        #expect(source.poll() == nil, "first look at the change")
        time.advance(.milliseconds(50))
        #expect(source.poll() == nil, "50 ms later: not settled")
        try rewrite(Self.services(5))
        time.advance(.milliseconds(150))
        #expect(source.poll() == nil, "changed again: it starts over")
        time.advance(.milliseconds(100))
        #expect(serviceCount(source.poll()) == 5)
        #expect(source.poll() == nil, "nothing new")
    }

    /// Truncate-then-write of the same text, 20 times, polled throughout: no answer ever holds fewer Services.
    @Test func truncateThenWriteNeverDropsAService() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let text = Self.services(23)
        try text.write(to: file, atomically: true, encoding: .utf8)
        let source = source()
        #expect(serviceCount(source.poll()) == 23)
        var refusals = 0
        for round in 0..<20 {
            try truncate()
            // The writer (kubectl waiting on the API server) takes a while after the truncation.
            for answer in pollEvery200ms(source, round % 4 + 1) {
                switch answer {
                case .success(let state): Issue.record("round \(round): \(state.services.count) Services taken")
                case .failure(let error):
                    refusals += 1
                    #expect(error.description == "\(file.path): has no objects (empty, or cut short while being written); the last good state stays")
                }
            }
            try rewrite(text)
            for answer in pollEvery200ms(source, 3) {
                Issue.record("round \(round): after the rewrite: \(answer)")
            }
        }
        #expect(refusals > 0, "the empty file was seen and refused")
    }

    @Test func anEmptyFileKeepsTheLastGoodState() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        try Self.services(2).write(to: file, atomically: true, encoding: .utf8)
        let source = source()
        _ = source.poll()
        for empty in ["", "\n\n", "# nothing yet\n", "---\n"] {
            try rewrite(empty)
            let answers = pollEvery200ms(source, 10)
            #expect(answers.count == 1)
            guard case .failure(let error)? = answers.first else {
                Issue.record("\(empty.debugDescription): \(answers)")
                continue
            }
            #expect(error.problems.map(\.source) == [file.path])
        }
    }

    /// A multi-document file cut at a document boundary parses; that it removes most Services is
    /// what gives it away. It applies only if it stands for 5 s.
    @Test func aLargeDropIsHeldUntilItStands() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        try Self.services(23).write(to: file, atomically: true, encoding: .utf8)
        let source = source()
        _ = source.poll()
        try rewrite(Self.services(10))
        #expect(pollEvery200ms(source, 20).isEmpty, "held for the first 4 s")
        let applied = pollEvery200ms(source, 10)
        #expect(applied.map(serviceCount) == [10])
    }

    @Test func aHeldDropThatIsUndoneNeverApplies() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        try Self.services(23).write(to: file, atomically: true, encoding: .utf8)
        let source = source()
        _ = source.poll()
        try rewrite(Self.services(10))
        #expect(pollEvery200ms(source, 10).isEmpty)
        try rewrite(Self.services(23))
        #expect(pollEvery200ms(source, 50).isEmpty, "the full file again: nothing changed")
    }

    /// Removing fewer than half is an ordinary change; so is growing.
    @Test func smallerDropsApplyAtOnce() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        try Self.services(4).write(to: file, atomically: true, encoding: .utf8)
        let source = source()
        _ = source.poll()
        try rewrite(Self.services(2))
        #expect(pollEvery200ms(source, 3).map(serviceCount) == [2], "half removed is not more than half")
        try rewrite(Self.services(2, from: 10))
        #expect(pollEvery200ms(source, 30).map(serviceCount) == [2], "every Service replaced: held, then applied")
    }

    /// YAML whose last line has no newline may be cut mid-line; it is read once it has stood 2 s.
    @Test func aFileEndingMidLineWaits() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        try Self.services(2).write(to: file, atomically: true, encoding: .utf8)
        let source = source()
        _ = source.poll()
        var text = Self.services(3)
        text.removeLast()  // the newline
        try rewrite(text)
        #expect(pollEvery200ms(source, 9).isEmpty, "under 2 s")
        #expect(pollEvery200ms(source, 3).map(serviceCount) == [3])
    }

    /// An object cut short fails to parse or to validate, and the last good state stays.
    @Test func aReadCutMidDocumentIsRefused() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        try Self.services(2).write(to: file, atomically: true, encoding: .utf8)
        let source = source()
        _ = source.poll()
        let full = Self.services(3)
        try rewrite(String(full.prefix(full.count - 40)) + "\n")
        let answers = pollEvery200ms(source, 5)
        #expect(answers.count == 1)
        if case .success(let state)? = answers.first { Issue.record("taken: \(state.services.count) Services") }
    }

    /// In a directory, one empty file is enough to keep the last good state.
    @Test func anEmptyFileInADirectory() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        try Self.services(2).write(to: file, atomically: true, encoding: .utf8)
        let source = source(directory.path)
        #expect(serviceCount(source.poll()) == 2)
        let other = directory.appendingPathComponent("more.yaml")
        #expect(FileManager.default.createFile(atPath: other.path, contents: Data()))
        let answers = pollEvery200ms(source, 5)
        guard case .failure(let error)? = answers.first else {
            Issue.record("\(answers)")
            return
        }
        #expect(error.problems.map(\.source) == [other.path])
    }

    /// Reads on their own thread: polls answer nil until the read is done, then its result.
    @Test func backgroundReads() async throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        try Self.services(2).write(to: file, atomically: true, encoding: .utf8)
        var logger = Logger(label: "kipvs-test")
        logger.logLevel = .critical
        let source = Applied(FileSource(path: file.path, clock: .system, logger: logger))
        #expect(serviceCount(source.poll()) == 2, "the first read is waited for")
        try rewrite(Self.services(3))
        let deadline = ContinuousClock.now + .seconds(20)
        var answer: Result<ClusterState, LoadError>?
        while answer == nil, ContinuousClock.now < deadline {
            answer = source.poll()
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(serviceCount(answer) == 3)
    }
}
