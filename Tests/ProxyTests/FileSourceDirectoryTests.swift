import Foundation
import Logging
import Testing
@testable import Proxy

/// A directory of manifests, driven by hand: a change is read file by file, and handed out as the
/// objects it changed.
@Suite struct FileSourceDirectoryTests {
    let directory: URL
    let time = FakeTime()

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("kipvs-filesource-dir-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    func source() -> Applied {
        var logger = Logger(label: "kipvs-test")
        logger.logLevel = .critical
        return Applied(FileSource(path: directory.path, clock: time.clock, logger: logger, readsInBackground: false))
    }

    static func service(_ i: Int, port: Int = 80) -> String {
        "apiVersion: v1\nkind: Service\nmetadata: {name: s\(i)}\nspec: {clusterIP: 10.96.\(i / 250).\(i % 250 + 1), ports: [{port: \(port)}]}\n"
    }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    func write(_ name: String, _ text: String) throws {
        try text.write(toFile: path(name), atomically: true, encoding: .utf8)
    }

    /// Polls as a loop woken every 200 ms would, `count` times; returns every answer as handed out.
    func changesEvery200ms(_ source: Applied, _ count: Int) -> [Result<ClusterChanges, LoadError>] {
        var answers: [Result<ClusterChanges, LoadError>] = []
        for _ in 0..<count {
            if let answer = source.pollChanges() { answers.append(answer) }
            time.advance(.milliseconds(200))
        }
        return answers
    }

    static func name(_ i: Int) -> ObjectName { ObjectName(namespace: "default", name: "s\(i)") }

    /// One file of a hundred changes: that file is parsed, no other, and only its Service is handed out.
    @Test func onlyTheChangedFileIsRead() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        for i in 0..<100 { try write(String(format: "s%03d.yaml", i), Self.service(i)) }
        let source = source()
        #expect((try? source.poll()?.get())?.services.count == 100)
        #expect(source.source.filesParsed == 100)

        try write("s042.yaml", Self.service(42, port: 8080))
        let answers = changesEvery200ms(source, 3)
        #expect(source.source.filesParsed == 101, "one file parsed again")
        guard answers.count == 1, case .success(let changes) = answers[0] else {
            Issue.record("\(answers)")
            return
        }
        #expect(changes.count == 1)
        #expect(changes.services[Self.name(42)]??.ports.map(\.port) == [8080])
        #expect(source.state.services.count == 100)
    }

    /// A file added and a file removed: the first brings its objects, the second takes its own away.
    @Test func filesComeAndGo() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        try write("a.yaml", Self.service(1) + "---\n" + Self.service(2))
        try write("b.yaml", Self.service(3))
        let source = source()
        _ = source.poll()
        try write("c.json", #"{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s4"}, "spec": {"ports": [{"port": 53}]}}"#)
        var answers = changesEvery200ms(source, 3)
        guard answers.count == 1, case .success(let added) = answers[0] else {
            Issue.record("\(answers)")
            return
        }
        #expect(added.services.keys.sorted() == [Self.name(4)])
        #expect(added.services[Self.name(4)]??.ports.map(\.port) == [53])

        let parsed = source.source.filesParsed
        try FileManager.default.removeItem(atPath: path("b.yaml"))
        answers = changesEvery200ms(source, 3)
        guard answers.count == 1, case .success(let removed) = answers[0] else {
            Issue.record("\(answers)")
            return
        }
        #expect(removed.services.count == 1)
        #expect(removed.services.keys.contains(Self.name(3)) && removed.services[Self.name(3)]! == nil, "deleted")
        #expect(source.source.filesParsed == parsed, "a deleted file is not read")
        #expect(source.state.services.map(\.metadata.name) == ["s1", "s2", "s4"])
    }

    /// An object moved from one file to another, both written before they settle: nothing changed.
    /// Moved and changed: its new version.
    @Test func anObjectMovesBetweenFiles() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        try write("a.yaml", Self.service(1) + "---\n" + Self.service(2))
        try write("b.yaml", Self.service(3))
        let source = source()
        _ = source.poll()

        try write("a.yaml", Self.service(1))
        try write("b.yaml", Self.service(2) + "---\n" + Self.service(3))
        #expect(changesEvery200ms(source, 5).isEmpty, "the same objects, in other files")

        try write("b.yaml", Self.service(3))
        try write("a.yaml", Self.service(1) + "---\n" + Self.service(2, port: 443))
        let answers = changesEvery200ms(source, 5)
        guard answers.count == 1, case .success(let changes) = answers[0] else {
            Issue.record("\(answers)")
            return
        }
        #expect(changes.count == 1)
        #expect(changes.services[Self.name(2)]??.ports.map(\.port) == [443])
    }

    /// One object in two files is refused, as one load of them all refuses it; removing one copy
    /// mends it. Only the files that changed are read for either.
    @Test func anObjectInTwoFilesIsRefused() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        try write("a.yaml", Self.service(1) + "---\n" + Self.service(2))
        try write("b.yaml", Self.service(3))
        let source = source()
        _ = source.poll()

        try write("b.yaml", Self.service(2, port: 443) + "---\n" + Self.service(3))
        var answers = changesEvery200ms(source, 5)
        guard answers.count == 1, case .failure(let error) = answers[0] else {
            Issue.record("\(answers)")
            return
        }
        #expect(error.problems == [LoadError.Problem(source: path("b.yaml"), object: "Service default/s2",
                                                     message: "also defined in \(path("a.yaml"))")])
        #expect(throws: LoadError.self) { try ManifestLoader.load(paths: [directory.path]) }

        let parsed = source.source.filesParsed
        try write("a.yaml", Self.service(1))
        answers = changesEvery200ms(source, 5)
        guard answers.count == 1, case .success(let changes) = answers[0] else {
            Issue.record("\(answers)")
            return
        }
        #expect(changes.count == 1)
        #expect(changes.services[Self.name(2)]??.ports.map(\.port) == [443], "the one left")
        #expect(source.source.filesParsed == parsed + 1)
    }

    /// A problem in one file keeps the last good state; the files' objects are handed out once it is mended.
    @Test func aBrokenFileHoldsEveryChangeBack() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        try write("a.yaml", Self.service(1))
        try write("b.yaml", Self.service(2))
        let source = source()
        _ = source.poll()

        try write("a.yaml", Self.service(1, port: 81))
        try write("b.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: s2}\nspec: {ports: [{port: 70000}]}\n")
        var answers = changesEvery200ms(source, 5)
        guard answers.count == 1, case .failure(let error) = answers[0] else {
            Issue.record("\(answers)")
            return
        }
        #expect(error.problems.map(\.source) == [path("b.yaml")])

        try write("b.yaml", Self.service(2))
        answers = changesEvery200ms(source, 5)
        guard answers.count == 1, case .success(let changes) = answers[0] else {
            Issue.record("\(answers)")
            return
        }
        #expect(changes.services.keys.sorted() == [Self.name(1)], "b.yaml is as it was; a.yaml's change comes now")
        #expect(changes.services[Self.name(1)]??.ports.map(\.port) == [81])
    }

    /// The changes handed out, applied one after another, always make what one load of the files
    /// makes: files rewritten a few at a time with Services drawn from a small pool, so that they
    /// move between files, vanish, come back, and are sometimes defined twice.
    @Test func changesAddUpToALoadOfEveryFile() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        var random = RewriteDraws(seed: 7)
        let source = source()
        for round in 0..<40 {
            for _ in 0..<random.next(in: 1...3) {
                let file = "f\(random.next(in: 0...4)).yaml"
                let first = random.next(in: 0...11)
                let services = (first..<first + random.next(in: 1...3)).map { Self.service($0, port: 80 + round % 3) }
                try write(file, services.joined(separator: "---\n"))
            }
            // Long enough for a held drop to stand.
            let answers = changesEvery200ms(source, 30)
            guard let expected = try? ManifestLoader.load(paths: [directory.path]) else {
                #expect(answers.contains { if case .failure = $0 { true } else { false } }, "round \(round)")
                continue
            }
            #expect(source.state.services.sorted { $0.metadata.name < $1.metadata.name }
                    == expected.services.sorted { $0.metadata.name < $1.metadata.name }, "round \(round)")
        }
    }
}

/// Which files to rewrite with what: the same draws on every run.
private struct RewriteDraws {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next(in range: ClosedRange<Int>) -> Int {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return range.lowerBound + Int((state >> 33) % UInt64(range.count))
    }
}
