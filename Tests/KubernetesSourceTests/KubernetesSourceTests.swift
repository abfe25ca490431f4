import KubeAPIServer
import Logging
import MetricsTestKit
import IPVS
import Proxy
import Testing
@testable import KubernetesSource

/// The source against the test API server: lists, watches, and every fault the server can inject.
/// Every wait is bounded; the server and the source stop when each test ends.
@Suite struct KubernetesSourceTests {
    /// Short timings so that faults resolve in well under a second.
    static var settings: WatchSettings {
        var settings = WatchSettings()
        settings.pageSize = 2
        settings.watchTimeout = .seconds(30)
        settings.idleTimeout = .seconds(1)
        settings.backoff = Backoff(initial: .milliseconds(50), maximum: .milliseconds(400))
        return settings
    }

    static var logger: Logger {
        var logger = Logger(label: "kipvs-test")
        logger.logLevel = .error
        return logger
    }

    /// Runs `body` while a source connected to `server` runs.
    func withSource<T: Sendable>(_ server: KubeAPIServer, metrics: TestMetrics = TestMetrics(),
                                 _ body: (KubernetesSource, StateTracker) async throws -> T) async throws -> T {
        let source = try KubernetesSource(connection: ClusterConnection(server: server.url), settings: Self.settings,
                                          logger: Self.logger, metrics: metrics)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await source.run() }
            defer { group.cancelAll() }
            return try await body(source, StateTracker(source: source))
        }
    }

    func seed(_ server: KubeAPIServer) {
        server.put(.services, Objects.service("web", clusterIP: "10.96.0.10"))
        server.put(.services, Objects.service("db", namespace: "data", clusterIP: "10.96.0.20", ports: [5432]))
        server.put(.services, Objects.service("other", clusterIP: "10.96.0.30",
                                              labels: ["service.kubernetes.io/service-proxy-name": "elsewhere"]))
        server.put(.endpointslices, Objects.endpointSlice("web-abc", service: "web", addresses: ["10.244.0.5"]))
        server.put(.endpointslices, Objects.endpointSlice("db-abc", namespace: "data", service: "db",
                                                          addresses: ["10.244.1.5"], ports: [5432]))
    }

    @Test func listsBothKindsThenFollowsChanges() async throws {
        try await KubeAPIServer.withServer { server in
            seed(server)
            try await withSource(server) { _, tracker in
                let first = try await tracker.waitFor { $0.services.count == 2 && $0.endpointSlices.count == 2 }
                #expect(first.services.map(\.metadata.qualifiedName) == ["data/db", "default/web"])

                server.put(.endpointslices, Objects.endpointSlice("web-def", service: "web", addresses: ["10.244.0.6"]))
                _ = try await tracker.waitFor { $0.endpointSlices.count == 3 }
                server.delete(.services, name: "web")
                let last = try await tracker.waitFor { $0.services.count == 1 }
                #expect(last.services.first?.metadata.name == "db")
            }
        }
    }

    @Test func servicesForAnotherProxyAreLeftOut() async throws {
        try await KubeAPIServer.withServer { server in
            seed(server)
            try await withSource(server) { _, tracker in
                _ = try await tracker.waitFor { $0.services.count == 2 }
                // Labelling a Service for another proxy removes it, as a deletion would.
                server.put(.services, Objects.service("web", clusterIP: "10.96.0.10",
                                                      labels: ["service.kubernetes.io/service-proxy-name": "elsewhere"]))
                let state = try await tracker.waitFor { $0.services.count == 1 }
                #expect(!state.services.contains { $0.metadata.name == "other" || $0.metadata.name == "web" })
            }
        }
    }

    @Test func noStateUntilBothListsComplete() async throws {
        try await KubeAPIServer.withServer { server in
            seed(server)
            server.failNext(4, .list(.endpointslices), status: 500)
            try await withSource(server) { source, tracker in
                try await waitUntil { server.requests.contains { $0.hasPrefix("/api/v1/services?watch=1") } }
                #expect(source.poll() == nil, "services are listed, endpoint slices are not")
                let state = try await tracker.waitFor { _ in true }
                #expect(state.endpointSlices.count == 2)
            }
        }
    }

    @Test func listsPageByPage() async throws {
        try await KubeAPIServer.withServer { server in
            for index in 0..<5 { server.put(.services, Objects.service("s\(index)", clusterIP: "10.96.1.\(index)")) }
            try await withSource(server) { _, tracker in
                _ = try await tracker.waitFor { $0.services.count == 5 }
                #expect(server.requests.filter { $0.hasPrefix("/api/v1/services?limit=2") }.count == 3)
            }
        }
    }

    @Test func bookmarksAreWhereAWatchResumes() async throws {
        try await KubeAPIServer.withServer { server in
            seed(server)
            try await withSource(server) { _, tracker in
                _ = try await tracker.waitFor { $0.services.count == 2 }
                try await waitUntil { server.openWatches == 2 }
                // Changes to slices move the global version past what the services watch has seen.
                server.put(.endpointslices, Objects.endpointSlice("web-def", service: "web", addresses: ["10.244.0.6"]))
                _ = try await tracker.waitFor { $0.endpointSlices.count == 3 }
                let bookmark = server.resourceVersion
                // A watch closed before the reflector took the bookmark in resumes from an older
                // version (a busy machine can take longer than any fixed pause): send it again then.
                let resumed = { server.requests.contains { $0.hasPrefix("/api/v1/services?watch=1&resourceVersion=\(bookmark)&") } }
                for _ in 0..<20 where !resumed() {
                    try await waitUntil { server.openWatches == 2 }
                    server.sendBookmark()
                    try await Task.sleep(for: .milliseconds(500))
                    server.closeWatches()
                    try await Task.sleep(for: .milliseconds(500))
                }
                try await waitUntil { resumed() }
            }
        }
    }

    @Test func convergesThroughDropsAndExpiriesMidChurn() async throws {
        let metrics = TestMetrics()
        try await KubeAPIServer.withServer { server in
            seed(server)
            try await withSource(server, metrics: metrics) { _, tracker in
                _ = try await tracker.waitFor { $0.services.count == 2 }
                try await waitUntil { server.openWatches == 2 }
                for step in 0..<40 {
                    server.put(.endpointslices, Objects.endpointSlice("web-abc", service: "web",
                                                                      addresses: ["10.244.0.\(step % 200 + 1)"]))
                    server.put(.services, Objects.service("churn\(step % 7)", clusterIP: "10.96.2.\(step)"))
                    if step % 5 == 4 { server.delete(.services, name: "churn\((step + 3) % 7)") }
                    switch step {
                    case 10: server.closeWatches()
                    case 20: server.expireWatches()
                    case 30:
                        server.answerExpiredWatches(with: .status)
                        server.compact()
                        server.closeWatches()
                    default: break
                    }
                    try await Task.sleep(for: .milliseconds(10))
                }
                let expected = Set(server.objects(.services).keys).subtracting(["default/other"])
                let final = try await tracker.waitFor { state in
                    Set(state.services.map(\.metadata.qualifiedName)) == expected
                        && state.endpointSlices.first { $0.metadata.name == "web-abc" }?.endpoints.first?.addresses
                        == [ip("10.244.0.40")]
                }
                #expect(final.services.count == expected.count)
            }
        }
        #expect(metrics.counterTotal(label: "kipvs_watch_restarts_total", dimensions: [("resource", "services"), ("reason", "expired")]) >= 1)
        #expect(metrics.counterTotal(label: "kipvs_watch_restarts_total", dimensions: [("resource", "services"), ("reason", "closed")]) >= 1)
    }

    @Test func anIdleWatchIsGivenUpAndResumed() async throws {
        try await KubeAPIServer.withServer { server in
            seed(server)
            try await withSource(server) { _, tracker in
                _ = try await tracker.waitFor { $0.services.count == 2 }
                server.stallWatches()
                server.put(.services, Objects.service("late", clusterIP: "10.96.3.1"))
                let before = server.requests.count { $0.hasPrefix("/api/v1/services?watch=1") }
                try await waitUntil { server.requests.count { $0.hasPrefix("/api/v1/services?watch=1") } > before }
                server.stallWatches(false)
                // The next re-watch, after the next idle timeout, replays the missed change.
                _ = try await tracker.waitFor { $0.services.contains { $0.metadata.name == "late" } }
            }
        }
    }

    @Test func keepsTheLastStateWhileTheAPIIsAway() async throws {
        try await KubeAPIServer.withServer { server in
            seed(server)
            try await withSource(server) { source, tracker in
                _ = try await tracker.waitFor { $0.services.count == 2 }
                server.refuseConnections()
                for _ in 0..<15 {
                    #expect(source.poll() == nil)
                    try await Task.sleep(for: .milliseconds(100))
                }
                server.put(.services, Objects.service("back", clusterIP: "10.96.4.1"))
                server.acceptConnections()
                let state = try await tracker.waitFor { $0.services.count == 3 }
                #expect(state.endpointSlices.count == 2)
            }
        }
    }

    @Test func watchRequestsAskForBookmarksAndATimeout() async throws {
        try await KubeAPIServer.withServer { server in
            seed(server)
            try await withSource(server) { _, tracker in
                _ = try await tracker.waitFor { _ in true }
                try await waitUntil { server.requests.contains { $0.contains("watch=1") } }
                let watch = try #require(server.requests.first { $0.hasPrefix("/apis/discovery.k8s.io/v1/endpointslices?watch=1") })
                #expect(watch.contains("allowWatchBookmarks=true"))
                #expect(watch.contains("timeoutSeconds="))
                #expect(watch.contains("resourceVersion="))
            }
        }
    }
}

/// Polls a source and keeps the state its changes add up to.
final class StateTracker: @unchecked Sendable {
    private let source: KubernetesSource
    private(set) var latest: ClusterState?

    init(source: KubernetesSource) {
        self.source = source
    }

    /// Waits (at most `timeout`) for a state that satisfies `condition`; fails the test otherwise.
    func waitFor(timeout: Duration = .seconds(60), _ condition: (ClusterState) -> Bool) async throws -> ClusterState {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if case .success(let changes)? = source.poll() {
                #expect(!changes.isEmpty, "an answer with no change")
                let state = (latest ?? ClusterState()).updated(with: changes)
                #expect(!(state.services.isEmpty && state.endpointSlices.isEmpty && latest != nil),
                        "an empty state after a full one")
                latest = state
            }
            if let latest, condition(latest) { return latest }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TimedOut(description: "no such state within \(timeout); last: \(latest.map { "\($0.services.count) services, \($0.endpointSlices.count) slices" } ?? "none")")
    }
}

struct TimedOut: Error, CustomStringConvertible {
    var description: String
}

/// Waits (at most `timeout`) until `condition` holds.
func waitUntil(timeout: Duration = .seconds(60), _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        guard ContinuousClock.now < deadline else { throw TimedOut(description: "condition not met within \(timeout)") }
        try await Task.sleep(for: .milliseconds(20))
    }
}

func ip(_ text: String) -> IPAddress {
    guard let address = IPAddress(text) else { fatalError("bad test address \(text)") }
    return address
}
