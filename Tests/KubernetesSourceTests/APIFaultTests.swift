import AsyncHTTPClient
import Foundation
import KubeAPIServer
import Logging
import MetricsTestKit
import NIOConcurrencyHelpers
import Proxy
import Testing
@testable import KubernetesSource

/// Bad data and refusals from the API server: objects kipvs cannot decode, garbage and unknown
/// events on a watch, garbage lists, a server that never sends headers or never ends them, error
/// bodies full of control characters, a certificate from another CA, a token it no longer takes,
/// a page larger than kipvs reads. Through all of them the last good state stays, nothing is
/// deleted, retries are paced by the backoff, and the source recovers.
/// Serialized, with roomy waits: each test runs a server, a source and faults whose timing a
/// loaded machine stretches; the waits end as soon as the state they wait for is there.
@Suite(.serialized) struct APIFaultTests {
    /// A long idle timeout, so that only the header timeout can end a silent request quickly.
    static var settings: WatchSettings {
        var settings = KubernetesSourceTests.settings
        settings.idleTimeout = .seconds(60)
        // Short enough for a quick test, long enough for a first answer on a loaded two-core machine.
        settings.headerTimeout = .seconds(2)
        return settings
    }

    /// Backoff long enough that the number of retries in a few seconds is small and predictable
    /// from its schedule, short enough for a quick test.
    static var pacedSettings: WatchSettings {
        var settings = settings
        settings.backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(1))
        return settings
    }

    /// Runs `body` while a source connected to `server` (by `connection`, if given) runs.
    func withSource<T: Sendable>(_ server: KubeAPIServer, connection: ClusterConnection? = nil, settings: WatchSettings = settings,
                                 metrics: TestMetrics = TestMetrics(), logs: LogRecorder = LogRecorder(),
                                 _ body: (KubernetesSource, ChangeRecorder) async throws -> T) async throws -> T {
        let logger = Logger(label: "kipvs-test") { _ in logs }
        let source = try KubernetesSource(connection: connection ?? ClusterConnection(server: server.url), settings: settings,
                                          logger: logger, metrics: metrics)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await source.run() }
            defer { group.cancelAll() }
            return try await body(source, ChangeRecorder(source: source))
        }
    }

    /// The most requests one reflector can send within `elapsed`, each failing: every wait before
    /// the next is at least the backoff's undisturbed delay, which grows with each failure.
    static func mostAttempts(within elapsed: Duration, backoff: Backoff) -> Int {
        var attempts = 1
        var waited = backoff.base(afterFailures: 1)
        while waited <= elapsed {
            attempts += 1
            waited += backoff.base(afterFailures: attempts)
        }
        return attempts
    }

    static func web(port: Int) -> JSON {
        Objects.service("web", clusterIP: "10.96.0.10", ports: [port])
    }

    func webPorts(_ state: ClusterState) -> [UInt16] {
        state.services.first { $0.metadata.name == "web" }?.ports.map(\.port) ?? []
    }

    /// An update kipvs cannot decode leaves the Service as it was, through later events and a relist.
    @Test func anUndecodableUpdateKeepsTheLastGoodVersion() async throws {
        let metrics = TestMetrics()
        let logs = LogRecorder()
        try await KubeAPIServer.withServer { server in
            server.put(.services, Self.web(port: 80))
            try await withSource(server, metrics: metrics, logs: logs) { _, tracker in
                _ = try await tracker.waitFor { webPorts($0) == [80] }
                try await tracker.waitUntil { server.openWatches == 2 }
                server.put(.services, Self.web(port: 70000))
                server.put(.services, Objects.service("later", clusterIP: "10.96.0.11"))
                let after = try await tracker.waitFor { $0.services.contains { $0.metadata.name == "later" } }
                #expect(webPorts(after) == [80])
                #expect(metrics.counterTotal(label: "kipvs_api_objects_unreadable_total", dimensions: [("resource", "services")]) == 1)
                #expect(logs.messages.contains { $0.contains("object kipvs cannot read; its last good version stays")
                        && $0.contains("Service default/web: spec.ports[0].port: 70000 is out of range") })

                // A relist reads it again, and again keeps what it had.
                server.expireWatches()
                try await tracker.waitUntil {
                    metrics.counterTotal(label: "kipvs_api_objects_unreadable_total", dimensions: [("resource", "services")]) >= 2
                }
                server.put(.services, Objects.service("latest", clusterIP: "10.96.0.12"))
                let relisted = try await tracker.waitFor { $0.services.contains { $0.metadata.name == "latest" } }
                #expect(webPorts(relisted) == [80])

                server.put(.services, Self.web(port: 81))
                _ = try await tracker.waitFor { webPorts($0) == [81] }
                #expect(tracker.deletions().isEmpty)
            }
        }
    }

    /// Garbage, an event of an unknown type, or an oversized line ends the watch; the next one goes on.
    @Test(arguments: ["{this is not json", #"{"type":"SURPRISE","object":{"metadata":{"name":"x","resourceVersion":"1"}}}"#,
                      "\u{1B}[2J\u{0}\u{7}binary"].map(RawLine.init))
    func badWatchLinesRestartTheWatch(_ raw: RawLine) async throws {
        let line = raw.text
        let metrics = TestMetrics()
        try await KubeAPIServer.withServer { server in
            server.put(.services, Self.web(port: 80))
            try await withSource(server, metrics: metrics) { _, tracker in
                _ = try await tracker.waitFor { webPorts($0) == [80] }
                try await tracker.waitUntil { server.openWatches == 2 }
                server.sendRawLine(line)
                try await tracker.waitUntil {
                    metrics.counterTotal(label: "kipvs_watch_restarts_total", dimensions: [("reason", "error")]) >= 1
                }
                server.put(.services, Self.web(port: 82))
                let state = try await tracker.waitFor { webPorts($0) == [82] }
                #expect(state.services.count == 1)
                #expect(tracker.deletions().isEmpty)
            }
        }
    }

    /// A list answered with garbage is retried after a backoff; nothing is published before a good one.
    @Test func aGarbageListIsRetried() async throws {
        try await KubeAPIServer.withServer { server in
            server.put(.services, Self.web(port: 80))
            server.answerNext(2, .list(.services), body: "\u{1B}[31m<html>not a list</html>\n")
            try await withSource(server) { _, tracker in
                let state = try await tracker.waitFor { webPorts($0) == [80] }
                #expect(state.services.count == 1)
                #expect(server.requests.count { $0.hasPrefix("/api/v1/services?limit=") } >= 3)
            }
        }
    }

    /// A list whose items are not a list is garbage too, not a list of nothing: read as empty, it
    /// would delete every Service. It is refused and retried; the state stays.
    @Test(arguments: [#"{"web": {}}"#, #""oops""#, "42"])
    func aListWhoseItemsAreNotAListIsRefused(_ items: String) async throws {
        let logs = LogRecorder()
        try await KubeAPIServer.withServer { server in
            server.put(.services, Self.web(port: 80))
            try await withSource(server, logs: logs) { _, tracker in
                try await tracker.waitFor { webPorts($0) == [80] }
                try await tracker.waitUntil { server.openWatches == 2 }
                let list = #"{"kind":"ServiceList","apiVersion":"v1","metadata":{"resourceVersion":"\#(server.resourceVersion)"},"items":\#(items)}"#
                server.answerNext(1, .list(.services), body: list)
                server.expireWatches()
                try await tracker.waitUntil { logs.messages.contains { $0.contains("list failed") } || !tracker.deletions().isEmpty }
                #expect(tracker.deletions().isEmpty)
                #expect(logs.messages.contains { $0.contains("list failed") && $0.contains("items") })
                server.put(.services, Self.web(port: 85))
                try await tracker.waitFor { webPorts($0) == [85] }
            }
        }
    }

    /// A server that accepts a request and never answers: the header timeout ends the wait, it is
    /// logged, and the request is sent again. (The idle timeout alone would wait 60 s here.)
    @Test func aSilentServerTimesOut() async throws {
        let logs = LogRecorder()
        try await KubeAPIServer.withServer { server in
            server.put(.services, Self.web(port: 80))
            server.silenceNext(1, .list(.services))
            try await withSource(server, logs: logs) { _, tracker in
                _ = try await tracker.waitFor { webPorts($0) == [80] }
                #expect(logs.messages.contains { $0.contains("list failed") && $0.contains("no response headers within 2.0 seconds") })

                try await tracker.waitUntil { server.openWatches == 2 }
                server.silenceNext(1, .watch(.services))
                server.closeWatches()
                server.put(.services, Self.web(port: 83))
                _ = try await tracker.waitFor { webPorts($0) == [83] }
                #expect(logs.messages.contains { $0.contains("watch refused") && $0.contains("no response headers within") })
                #expect(tracker.deletions().isEmpty)
            }
        }
    }

    /// A server that sends a status line and then a header a byte at a time, never ending it: the
    /// bytes keep an idle timeout from ever firing, the header timeout ends the wait all the same.
    @Test func headersThatNeverEndTimeOut() async throws {
        let logs = LogRecorder()
        try await KubeAPIServer.withServer { server in
            server.put(.services, Self.web(port: 80))
            server.trickleHeadersNext(1, .list(.services))
            try await withSource(server, logs: logs) { _, tracker in
                _ = try await tracker.waitFor { webPorts($0) == [80] }
                let timedOut = logs.messages.filter { $0.contains("list failed") && $0.contains("no response headers within 2.0 seconds") }
                #expect(!timedOut.isEmpty, "\(logs.messages)")
                #expect(timedOut.allSatisfy { $0.contains("/api/v1/services at \(server.url): ") }, "\(timedOut)")
                #expect(server.requests.count { $0.hasPrefix("/api/v1/services?limit=") } >= 2)
            }
        }
    }

    /// An error body goes to the log as one short line, its control characters escaped.
    @Test func errorBodiesAreLoggedSafely() async throws {
        try await KubeAPIServer.withServer { server in
            let body = "{\"message\": \"first\nsecond\r\u{1B}[2J\u{1B}]0;title\u{7}\"}" + String(repeating: "z", count: 100_000)
            server.failNext(1, .list(.services), status: 500, body: body)
            let http = try APIClient.makeHTTPClient(for: ClusterConnection(server: server.url), idleTimeout: .seconds(30))
            let client = APIClient(http: http, connection: ClusterConnection(server: server.url))
            var description = ""
            do {
                _ = try await client.list("/api/v1/services", limit: 10, continueToken: nil)
                Issue.record("the injected failure did not come")
            } catch {
                description = "\(error)"
            }
            try await http.shutdown()
            #expect(description.hasPrefix(#"/api/v1/services: 500 Internal Server Error {\"message\": \"first\nsecond\r\u{1b}[2J\u{1b}]0;title\u{7}\"}zzz"#),
                    "\(description)")
            #expect(!description.contains { $0.isNewline || $0 == "\u{1B}" || $0 == "\u{7}" })
            #expect(description.hasSuffix("… (4096 bytes)"), "\(description)")
            #expect(description.utf8.count < 400)
        }
    }
}

/// A line for a test's name, escaped: the test log is a terminal too.
struct RawLine: Sendable, CustomTestStringConvertible {
    let text: String
    var testDescription: String { text.debugDescription }
}

/// Every log record, as one line of text with its metadata.
final class LogRecorder: LogHandler, @unchecked Sendable {
    private let records = NIOLockedValueBox<[String]>([])
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    var messages: [String] { records.withLockedValue { $0 } }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let fields = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        records.withLockedValue { $0.append("\(event.level) \(event.message) \(fields)") }
    }
}
