import Foundation
import KubeAPIServer
import Proxy
import Testing
@testable import KubernetesSource

extension APIFaultTests {
    static func webSlice(_ address: String) -> JSON {
        Objects.endpointSlice("web-abc", service: "web", addresses: [address])
    }

    /// A token the server stops taking after a good list (expired, revoked): the state handed out
    /// stays, nothing is deleted, each refusal is logged once and the retries are paced by the
    /// backoff; once the server takes the token again, what changed meanwhile arrives.
    @Test func aRefusedTokenKeepsTheStateUntilItIsTakenAgain() async throws {
        let logs = LogRecorder()
        let settings = Self.pacedSettings
        try await KubeAPIServer.withServer { server in
            server.put(.services, Self.web(port: 80))
            server.put(.endpointslices, Self.webSlice("10.244.0.5"))
            server.requireToken("token-1")
            let connection = ClusterConnection(server: server.url, credentials: .bearer(BearerToken("token-1")))
            try await withSource(server, connection: connection, settings: settings, logs: logs) { _, tracker in
                try await tracker.waitFor { webPorts($0) == [80] && $0.endpointSlices.count == 1 }
                try await tracker.waitUntil { server.openWatches == 2 }
                let delivered = tracker.batches.count

                let start = ContinuousClock.now
                server.requireToken("token-2")
                server.closeWatches()
                server.put(.services, Objects.service("late", clusterIP: "10.96.0.11"))
                server.put(.endpointslices, Self.webSlice("10.244.0.6"))
                try await tracker.waitUntil { server.unauthorizedRequests >= 10 }
                let refused = server.unauthorizedRequests
                let elapsed = ContinuousClock.now - start
                #expect(refused <= 2 * Self.mostAttempts(within: elapsed, backoff: settings.backoff), "\(refused) refusals in \(elapsed)")
                #expect(tracker.batches.count == delivered, "something was handed out while the token was refused")

                server.requireToken("token-1")
                let state = try await tracker.waitFor {
                    $0.services.count == 2 && $0.endpointSlices.first?.endpoints.first?.addresses == [ip("10.244.0.6")]
                }
                #expect(webPorts(state) == [80])
                #expect(tracker.deletions().isEmpty)
                let changed = tracker.changed(after: delivered)
                #expect(changed.services == [ObjectName(namespace: "default", name: "late")])
                #expect(changed.slices == [ObjectName(namespace: "default", name: "web-abc")])
                // Both reflectors are through, so every refusal has been logged: once.
                #expect(logs.messages.count { $0.contains("401 Unauthorized") } == server.unauthorizedRequests)
            }
        }
    }

    /// A token refused from the very first list: nothing is handed out and the lists are retried
    /// at the backoff's pace; once the token file holds one the server takes (rotated, as a
    /// projected service-account token is), the source lists and watches.
    @Test func aTokenRefusedFromTheStartDeliversNothingUntilRotated() async throws {
        let logs = LogRecorder()
        let settings = Self.pacedSettings
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kipvs-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // Only a scratch directory is left behind if this fails.
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let tokenFile = "\(directory)/token"
        try "stale\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)

        try await KubeAPIServer.withServer { server in
            server.put(.services, Self.web(port: 80))
            server.put(.endpointslices, Self.webSlice("10.244.0.5"))
            server.requireToken("fresh")
            let connection = ClusterConnection(server: server.url, credentials: .bearer(BearerToken(file: tokenFile)))
            let start = ContinuousClock.now
            try await withSource(server, connection: connection, settings: settings, logs: logs) { _, tracker in
                try await tracker.waitUntil { server.unauthorizedRequests >= 10 }
                let refused = server.unauthorizedRequests
                let elapsed = ContinuousClock.now - start
                #expect(refused <= 2 * Self.mostAttempts(within: elapsed, backoff: settings.backoff), "\(refused) refusals in \(elapsed)")
                #expect(tracker.batches.isEmpty)
                #expect(!server.requests.contains { $0.contains("watch=1") })

                try "fresh\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
                let state = try await tracker.waitFor { webPorts($0) == [80] && $0.endpointSlices.count == 1 }
                #expect(state.services.count == 1)
                #expect(tracker.deletions().isEmpty)
                #expect(logs.messages.count { $0.contains("list failed") && $0.contains("401 Unauthorized") } == server.unauthorizedRequests)
            }
        }
    }
}
