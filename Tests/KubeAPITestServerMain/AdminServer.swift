import Foundation
import KubeAPIServer
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The interface scripts drive the test API server with, on its own loopback port so that it
/// stays reachable while the API refuses connections. Every answer is a JSON object.
///
///     POST /admin/apply                 body: Services and EndpointSlices (JSON or YAML); each is
///                                       created or replaced: a new resourceVersion and a watch event
///     POST /admin/delete?kind=K&namespace=NS&name=N    404 when there is no such object
///     POST /admin/fault?type=T[&…]      close-watches | gone-event | gone-status | bookmark |
///                                       stall | unstall | refuse[&seconds=N] | accept |
///                                       fail&status=S[&count=N][&request=any|list|watch]
///     GET  /admin/state                 resourceVersion, object counts, open watches, refusing
final class AdminServer: Sendable {
    typealias Connection = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>

    /// The largest request body accepted: enough for 10,000 Services and their EndpointSlices.
    static let maximumBody = 128 << 20
    /// The longest timed refusal.
    static let maximumRefusal = 3600

    private struct Refusal {
        /// Bumped by every refuse and accept, so that a timed refusal ends only if nothing came after it.
        var generation = 0
        var refusing = false
    }

    /// What a connection does once its response is sent.
    private enum FollowUp {
        case accept(after: Int, generation: Int)
    }

    private struct Answer {
        var status: HTTPResponseStatus
        var body: JSON
        var followUp: FollowUp?

        init(_ status: HTTPResponseStatus, _ body: JSON, followUp: FollowUp? = nil) {
            self.status = status
            self.body = body
            self.followUp = followUp
        }

        static func error(_ status: HTTPResponseStatus, _ message: String) -> Answer {
            Answer(status, ["error": .string(message)])
        }
    }

    let api: KubeAPIServer
    let port: Int
    private let listener: NIOAsyncChannel<Connection, Never>
    private let refusal = Mutex(Refusal())

    private init(api: KubeAPIServer, listener: NIOAsyncChannel<Connection, Never>) {
        self.api = api
        self.listener = listener
        port = listener.channel.localAddress?.port ?? 0
    }

    /// Listens on 127.0.0.1:`port` (0: any free port).
    static func bind(port: Int, api: KubeAPIServer) async throws -> AdminServer {
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    return try Connection(wrappingChannelSynchronously: channel)
                }
            }
        return AdminServer(api: api, listener: listener)
    }

    /// Serves until cancelled.
    func run() async throws {
        try await listener.executeThenClose { connections in
            try await withThrowingDiscardingTaskGroup { group in
                for try await connection in connections {
                    group.addTask { await self.handle(connection) }
                }
            }
        }
    }

    private func handle(_ connection: Connection) async {
        var followUp: FollowUp?
        try? await connection.executeThenClose { requests, responses in
            var head: HTTPRequestHead?
            var body = ByteBuffer()
            var tooLarge = false
            for try await part in requests {
                switch part {
                case .head(let request):
                    (head, tooLarge) = (request, false)
                    body.clear()
                case .body(var chunk):
                    if body.readableBytes + chunk.readableBytes > Self.maximumBody {
                        tooLarge = true
                    } else if !tooLarge {
                        body.writeBuffer(&chunk)
                    }
                case .end:
                    guard let request = head else { continue }
                    let answer = tooLarge ? .error(.payloadTooLarge, "body over \(Self.maximumBody) bytes")
                        : respond(to: request, body: String(buffer: body))
                    if let next = answer.followUp { followUp = next }
                    let keepAlive = request.isKeepAlive && !tooLarge
                    try await send(answer, version: request.version, keepAlive: keepAlive, on: responses)
                    if !keepAlive { return }
                }
            }
        }
        if case .accept(let seconds, let generation) = followUp {
            // Bound to this connection's task, so it ends with the server.
            try? await Task.sleep(for: .seconds(seconds))
            if Task.isCancelled { return }
            let current = refusal.withLock { refusal in
                guard refusal.generation == generation else { return false }
                refusal.refusing = false
                return true
            }
            if current {
                api.acceptConnections()
                log("accepting connections again", ["after": .int(seconds)])
            }
        }
    }

    private func respond(to head: HTTPRequestHead, body: String) -> Answer {
        let (path, query) = Self.split(head.uri)
        switch (head.method, path) {
        case (.POST, "/admin/apply"): return apply(body)
        case (.POST, "/admin/delete"): return delete(query)
        case (.POST, "/admin/fault"): return fault(query)
        case (.GET, "/admin/state"): return state()
        case (_, "/admin/apply"), (_, "/admin/delete"), (_, "/admin/fault"), (_, "/admin/state"):
            return .error(.methodNotAllowed, "\(head.method) \(path)")
        default:
            return .error(.notFound, "no such admin path: \(path)")
        }
    }

    // MARK: Objects

    /// All or nothing: a body with one unusable object changes nothing.
    private func apply(_ body: String) -> Answer {
        let objects: [(Resource, JSON)]
        do {
            objects = try Documents.parse(body)
        } catch {
            return .error(.badRequest, error.description)
        }
        for (resource, object) in objects { api.put(resource, object) }
        let version = api.resourceVersion
        log("applied", ["objects": .int(objects.count), "resourceVersion": .int(version)])
        return Answer(.ok, ["applied": .int(objects.count), "resourceVersion": .string(String(version))])
    }

    private func delete(_ query: [String: String]) -> Answer {
        guard let kind = query["kind"], let resource = Self.resource(kind) else {
            return .error(.badRequest, "kind: expected Service or EndpointSlice")
        }
        guard let name = query["name"], !name.isEmpty else { return .error(.badRequest, "name is required") }
        let namespace = query["namespace"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        guard api.delete(resource, namespace: namespace, name: name) else {
            return .error(.notFound, "no \(resource.kind) \(namespace)/\(name)")
        }
        let version = api.resourceVersion
        log("deleted", ["object": .string("\(resource.kind) \(namespace)/\(name)"), "resourceVersion": .int(version)])
        return Answer(.ok, ["deleted": .string("\(namespace)/\(name)"), "resourceVersion": .string(String(version))])
    }

    private func state() -> Answer {
        var body: JSON = ["resourceVersion": .string(String(api.resourceVersion)), "openWatches": .int(api.openWatches),
                          "refusing": .bool(refusal.withLock { $0.refusing })]
        for resource in Resource.allCases { body[resource.rawValue] = .int(api.objects(resource).count) }
        return Answer(.ok, body)
    }

    static func resource(_ name: String) -> Resource? {
        let lowered = name.lowercased()
        return Resource.allCases.first { lowered == $0.kind.lowercased() || lowered == $0.rawValue }
            ?? (lowered == "svc" ? .services : nil)
    }

    // MARK: Faults

    private func fault(_ query: [String: String]) -> Answer {
        var followUp: FollowUp?
        switch query["type"] ?? "" {
        case "close-watches":
            api.closeWatches()
        case "gone-event":
            api.answerExpiredWatches(with: .errorEvent)
            api.expireWatches()
        case "gone-status":
            // Every version clients hold is gone and their watches end: each comes back with its
            // old version and gets 410 Gone as the response status.
            api.answerExpiredWatches(with: .status)
            api.expireAllVersions()
            api.closeWatches()
        case "bookmark":
            api.sendBookmark()
        case "stall":
            api.stallWatches(true)
        case "unstall":
            api.stallWatches(false)
        case "refuse":
            var seconds: Int?
            if let text = query["seconds"] {
                guard let value = Int(text), (1...Self.maximumRefusal).contains(value) else {
                    return .error(.badRequest, "seconds: expected 1 to \(Self.maximumRefusal)")
                }
                seconds = value
            }
            let generation = refusal.withLock { refusal in
                refusal.generation += 1
                refusal.refusing = true
                return refusal.generation
            }
            api.refuseConnections()
            followUp = seconds.map { .accept(after: $0, generation: generation) }
        case "accept":
            refusal.withLock { refusal in
                refusal.generation += 1
                refusal.refusing = false
            }
            api.acceptConnections()
        case "fail":
            guard let status = query["status"].flatMap(Int.init), (400...599).contains(status) else {
                return .error(.badRequest, "status: expected an HTTP error status, 400 to 599")
            }
            guard let count = Int(query["count"] ?? "1"), (1...1000).contains(count) else {
                return .error(.badRequest, "count: expected 1 to 1000")
            }
            switch query["request"] ?? "any" {
            case "any": api.failNext(count, .any, status: status)
            case "list": for resource in Resource.allCases { api.failNext(count, .list(resource), status: status) }
            case "watch": for resource in Resource.allCases { api.failNext(count, .watch(resource), status: status) }
            default: return .error(.badRequest, "request: expected any, list or watch")
            }
        default:
            return .error(.badRequest, "type: expected close-watches, gone-event, gone-status, bookmark, stall, unstall, "
                                       + "refuse, accept or fail")
        }
        var details: [String: JSON] = [:]
        for (key, value) in query { details[key] = .string(value) }
        log("fault", details)
        return Answer(.ok, ["fault": .string(query["type"] ?? ""), "resourceVersion": .string(String(api.resourceVersion))],
                      followUp: followUp)
    }

    // MARK: HTTP

    private func send(_ answer: Answer, version: HTTPVersion, keepAlive: Bool,
                      on out: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>) async throws {
        let bytes = ByteBuffer(string: answer.body.text + "\n")
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: "\(bytes.readableBytes)")
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        try await out.write(.head(HTTPResponseHead(version: version, status: answer.status, headers: headers)))
        try await out.write(.body(.byteBuffer(bytes)))
        try await out.write(.end(nil))
    }

    /// A URI's path and its query parameters, percent-decoded.
    static func split(_ uri: String) -> (path: String, query: [String: String]) {
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        var query: [String: String] = [:]
        if parts.count > 1 {
            for pair in parts[1].split(separator: "&") {
                let keyValue = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let value = keyValue.count > 1 ? String(keyValue[1]).replacingOccurrences(of: "+", with: " ") : ""
                query[String(keyValue[0])] = value.removingPercentEncoding ?? value
            }
        }
        return (String(parts[0]), query)
    }

    /// One line on standard error per admin action, for a failing test's log.
    private func log(_ message: String, _ details: [String: JSON]) {
        FileHandle.standardError.write(Data("kube-api-test-server: \(message) \(JSON.object(details).text)\n".utf8))
    }
}
