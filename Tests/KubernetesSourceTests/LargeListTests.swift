import AsyncHTTPClient
import KubeAPIServer
import Proxy
import Testing
@testable import KubernetesSource

/// How the page is framed: with its length in the headers, or in chunks (as the API server
/// streams a large list).
struct Framing: Sendable, CustomTestStringConvertible {
    let chunked: Bool
    var testDescription: String { chunked ? "chunked" : "with Content-Length" }
    static let both = [Framing(chunked: false), Framing(chunked: true)]
}

extension APIFaultTests {
    /// The limit on a page is where its documentation says: a page of exactly the limit is read
    /// whole, a byte more is refused naming the resource and the limit, and the client goes on.
    @Test(arguments: Framing.both)
    func aPageIsReadUpToTheLimitAndNoFurther(_ framing: Framing) async throws {
        try await KubeAPIServer.withServer { server in
            server.put(.services, Self.web(port: 80))
            let http = try APIClient.makeHTTPClient(for: ClusterConnection(server: server.url), idleTimeout: .seconds(30))
            var client = APIClient(http: http, connection: ClusterConnection(server: server.url))
            client.maximumBodySize = 1 << 20
            do {
                server.answerNext(1, .services, listOfBytes: 1 << 20, chunked: framing.chunked)
                let whole = try await client.list("/api/v1/services", limit: 500, continueToken: nil)
                #expect(whole.utf8.count == 1 << 20)
                #expect(whole.hasPrefix(#"{"kind":"ServiceList""#) && whole.hasSuffix("]}"))

                server.answerNext(1, .services, listOfBytes: (1 << 20) + 1, chunked: framing.chunked)
                let error = await #expect(throws: APIRequestError.self) {
                    try await client.list("/api/v1/services", limit: 500, continueToken: nil)
                }
                #expect(error?.failure == .malformed)
                #expect(error?.description == "list /api/v1/services: a page over the limit of 1 MiB; not read further")

                let next = try await client.list("/api/v1/services", limit: 500, continueToken: nil)
                #expect(next.contains(#""name":"web""#))
            } catch {
                Issue.record("\(error)")
            }
            try await http.shutdown()
        }
    }

    /// A page half again the default limit, answering a relist: the source reads no more than the
    /// limit of it, logs the refusal once, keeps what it has (nothing deleted, nothing of the page
    /// added), lists again after a backoff and goes on following changes.
    @Test(arguments: Framing.both)
    func aPageOverTheLimitKeepsTheState(_ framing: Framing) async throws {
        let logs = LogRecorder()
        let bytes = TextLimits.listBytes + TextLimits.listBytes / 2
        try await KubeAPIServer.withServer { server in
            server.put(.services, Self.web(port: 80))
            try await withSource(server, logs: logs) { _, tracker in
                try await tracker.waitFor { webPorts($0) == [80] }
                try await tracker.waitUntil { server.openWatches == 2 }
                let delivered = tracker.batches.count

                server.answerNext(1, .services, listOfBytes: bytes, chunked: framing.chunked)
                server.expireWatches()
                try await tracker.waitUntil { logs.messages.contains { $0.contains("list failed") } }
                server.put(.services, Self.web(port: 84))
                let state = try await tracker.waitFor { webPorts($0) == [84] }

                let refused = logs.messages.filter { $0.contains("list failed") && $0.contains("a page over the limit") }
                #expect(refused.count == 1, "\(refused)")
                #expect(refused.allSatisfy { $0.contains("list /api/v1/services: a page over the limit of 64 MiB; not read further") })
                // The client stopped reading: what the server got rid of is the limit at most, and
                // what the socket buffers took.
                #expect(server.bulkListBytesSent < bytes)
                #expect(state.services.count == 1)
                #expect(tracker.deletions().isEmpty)
                #expect(tracker.changed(after: delivered).services == [ObjectName(namespace: "default", name: "web")])
            }
        }
    }
}
