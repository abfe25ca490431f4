import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A Kubernetes API server for tests, on 127.0.0.1 and an ephemeral port: discovery, list
/// (paginated, at consistent versions), watch (replay from any retained version, bookmarks) and
/// writes (create, replace, delete, server-side apply) of v1 Services and discovery.k8s.io/v1
/// EndpointSlices, and faults on demand. Plain HTTP unless given a `ConnectionLayer` (TLS); any
/// client is let in unless `requireToken` says otherwise. Start it with `withServer`, which stops it
/// when the body returns.
public final class KubeAPIServer: Sendable {
    /// Which requests an injected failure applies to.
    public enum RequestKind: Sendable, Equatable {
        case any
        case list(Resource)
        case watch(Resource)
    }

    /// How a watch from a compacted version is answered: real servers do both, depending on the path.
    public enum ExpiredWatchAnswer: Sendable {
        case errorEvent
        case status
    }

    private enum Command: Sendable {
        case refuse
        case accept
    }

    /// How an injected failure answers.
    private enum Failure {
        /// That status, with a Status body or the given text.
        case status(Int, body: String?)
        /// 200 OK with the given body, whatever it is.
        case body(String)
        /// Nothing at all, not even the headers, until the connection or the server closes.
        case silence
        /// A status line and headers that never end: a byte of a header now and then, forever.
        case unfinishedHead
        /// 200 OK with a well-formed list of `resource` that is `bytes` long, made as it is sent,
        /// with its length in the headers or in chunks of unannounced length.
        case bulkList(Resource, bytes: Int, chunked: Bool)
    }

    private struct Faults {
        var failures: [(kind: RequestKind, failure: Failure)] = []
        var expiredWatchAnswer = ExpiredWatchAnswer.errorEvent
        var requests: [String] = []
        /// The bearer token every request must carry; nil lets any request in.
        var requiredToken: String?
        var unauthorized = 0
        var bulkBytesSent = 0
    }

    /// The largest request body read; a larger one is answered 413.
    static let maximumBody = 16 << 20

    public let port: Int
    let store = ObjectStore()
    private let layer: ConnectionLayer?
    private let accepted: NIOLockedValueBox<Int>
    private let faults = NIOLockedValueBox(Faults())
    private let commands: AsyncStream<Command>.Continuation
    private let commandStream: AsyncStream<Command>

    private init(port: Int, layer: ConnectionLayer?, accepted: NIOLockedValueBox<Int>) {
        self.port = port
        self.layer = layer
        self.accepted = accepted
        (commandStream, commands) = AsyncStream<Command>.makeStream()
    }

    /// `http://127.0.0.1:PORT`, or the layer's scheme.
    public var url: String { "\(layer?.scheme ?? "http")://127.0.0.1:\(port)" }

    /// Runs `body` with a started server on `port` (0: an ephemeral one), each connection under
    /// `layer` if given; the server stops when `body` returns.
    public static func withServer<T: Sendable>(port: Int = 0, layer: ConnectionLayer? = nil,
                                               _ body: (KubeAPIServer) async throws -> T) async throws -> T {
        let accepted = NIOLockedValueBox(0)
        let first = try await bind(port: port, layer: layer, accepted: accepted)
        let server = KubeAPIServer(port: first.channel.localAddress?.port ?? 0, layer: layer, accepted: accepted)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.serve(startingWith: first) }
            defer { group.cancelAll() }
            return try await body(server)
        }
    }

    // MARK: Objects

    /// Creates or replaces an object (a JSON object with at least `metadata.name`).
    @discardableResult
    public func put(_ resource: Resource, _ object: JSON) -> JSON { store.put(resource, object) }

    @discardableResult
    public func delete(_ resource: Resource, namespace: String = "default", name: String) -> Bool {
        store.delete(resource, namespace: namespace, name: name)
    }

    /// Current objects by `namespace/name`.
    public func objects(_ resource: Resource) -> [String: JSON] { store.objects(resource) }

    /// The latest resourceVersion.
    public var resourceVersion: Int { store.revision }

    /// Every request's URI, in order.
    public var requests: [String] { faults.withLockedValue { $0.requests } }

    public var openWatches: Int { store.openWatches }

    /// Connections accepted, whether or not a request came over them (a TLS handshake may fail first).
    public var connectionsAccepted: Int { accepted.withLockedValue { $0 } }

    /// Bytes of `answerNext(_:_:listOfBytes:chunked:)` pages the client took before it stopped reading.
    public var bulkListBytesSent: Int { faults.withLockedValue { $0.bulkBytesSent } }

    /// Requests answered 401 Unauthorized.
    public var unauthorizedRequests: Int { faults.withLockedValue { $0.unauthorized } }

    // MARK: Authentication

    /// From now on a request must carry `Authorization: Bearer <token>` or is answered 401, as a
    /// server answers an expired or revoked token; nil lets any request in again. Open watches go on.
    public func requireToken(_ token: String?) {
        faults.withLockedValue { $0.requiredToken = token }
    }

    // MARK: Faults

    /// Ends every open watch response, as a restarting server does.
    public func closeWatches() { store.closeWatches() }

    /// Sends a BOOKMARK at the current version to every watch that allows them.
    public func sendBookmark() {
        store.broadcast { resource, revision in
            .event(type: "BOOKMARK", object: ["kind": .string(resource.kind), "apiVersion": .string(resource.apiVersion),
                                              "metadata": ["resourceVersion": .string(String(revision))]])
        }
    }

    /// Forgets history: watches and list continuations from older versions get 410 Gone.
    public func compact() { store.compact() }

    /// Compacts, and ends every open watch with an ERROR event carrying 410 Gone.
    public func expireWatches() {
        store.compact()
        store.broadcast { _, _ in .event(type: "ERROR", object: Self.expiredStatus) }
    }

    /// Forgets every version a client holds: the version moves on without a change (as etcd's does
    /// for writes elsewhere), then history is compacted, so a watch or list continuation from any
    /// version before now gets 410 Gone. Open watches go on.
    public func expireAllVersions() { store.advanceAndCompact() }

    /// How a watch from a compacted version is answered from now on.
    public func answerExpiredWatches(with answer: ExpiredWatchAnswer) {
        faults.withLockedValue { $0.expiredWatchAnswer = answer }
    }

    /// The next `count` requests of `kind` are answered with `status` and a Status body, or
    /// `body` as it is (newlines, escape sequences and all).
    public func failNext(_ count: Int = 1, _ kind: RequestKind = .any, status: Int, body: String? = nil) {
        faults.withLockedValue { $0.failures += Array(repeating: (kind, .status(status, body: body)), count: count) }
    }

    /// The next `count` requests of `kind` are answered 200 OK with `body`, which need not be JSON.
    public func answerNext(_ count: Int = 1, _ kind: RequestKind = .any, body: String) {
        faults.withLockedValue { $0.failures += Array(repeating: (kind, .body(body)), count: count) }
    }

    /// The next `count` requests of `kind` get no answer at all: the connection stays open and
    /// the response headers never come.
    public func silenceNext(_ count: Int = 1, _ kind: RequestKind = .any) {
        faults.withLockedValue { $0.failures += Array(repeating: (kind, .silence), count: count) }
    }

    /// The next `count` requests of `kind` get a status line and the start of a header, then a byte
    /// of it every so often, never the end of the headers: an idle timeout alone does not end them.
    public func trickleHeadersNext(_ count: Int = 1, _ kind: RequestKind = .any) {
        faults.withLockedValue { $0.failures += Array(repeating: (kind, .unfinishedHead), count: count) }
    }

    /// The next `count` list requests of `resource` are answered 200 OK with one page of it that is
    /// `bytes` long: well-formed, with as many distinct Services or EndpointSlices as fit. Its
    /// length is in the headers, or, `chunked`, known only at its end (as the API server streams a
    /// large list). The page is made as it is sent, so the server never holds it whole.
    public func answerNext(_ count: Int = 1, _ resource: Resource, listOfBytes bytes: Int, chunked: Bool = false) {
        faults.withLockedValue {
            $0.failures += Array(repeating: (.list(resource), .bulkList(resource, bytes: bytes, chunked: chunked)), count: count)
        }
    }

    /// Sends `line` as it is (garbage, an unknown event type…) on every open watch.
    public func sendRawLine(_ line: String) {
        store.broadcast { _, _ in .raw(line) }
    }

    /// Open and new watches get nothing more (the connection stays open) until they are closed.
    public func stallWatches(_ stalled: Bool = true) { store.stall(stalled) }

    /// Stops listening and drops every connection: new connections are refused.
    public func refuseConnections() { commands.yield(.refuse) }

    /// Listens again on the same port.
    public func acceptConnections() { commands.yield(.accept) }

    // MARK: Serving

    private typealias Connection = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>

    /// An accepted connection, and a way to write to it past HTTP's encoder.
    private struct Accepted: Sendable {
        var connection: Connection
        var raw: RawOutput
    }

    private static func bind(port: Int, layer: ConnectionLayer?, accepted: NIOLockedValueBox<Int>)
        async throws -> NIOAsyncChannel<Accepted, Never> {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    accepted.withLockedValue { $0 += 1 }
                    try layer?.configure(channel)
                    // Under HTTP, so that its bytes skip HTTP's encoder (but not the layer).
                    let raw = RawOutput(eventLoop: channel.eventLoop)
                    try channel.pipeline.syncOperations.addHandler(raw)
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    return Accepted(connection: try Connection(wrappingChannelSynchronously: channel), raw: raw)
                }
            }
    }

    private func serve(startingWith first: NIOAsyncChannel<Accepted, Never>) async throws {
        var listener: NIOAsyncChannel<Accepted, Never>? = first
        var commands = commandStream.makeAsyncIterator()
        while !Task.isCancelled {
            if let current = listener {
                await withTaskGroup(of: Void.self) { group in
                    group.addTask {
                        // A listener that fails leaves the port closed, as a refusing server.
                        try? await current.executeThenClose { connections in
                            try await withThrowingDiscardingTaskGroup { connectionGroup in
                                for try await accepted in connections {
                                    connectionGroup.addTask { await self.handle(accepted.connection, raw: accepted.raw) }
                                }
                            }
                        }
                    }
                    while let command = await commands.next(), command != .refuse {}
                    group.cancelAll()
                }
                store.closeWatches()
                listener = nil
            } else {
                while let command = await commands.next(), command != .accept {}
                if Task.isCancelled { return }
                listener = try await Self.bind(port: port, layer: layer, accepted: accepted)
            }
        }
    }

    private func handle(_ connection: Connection, raw: RawOutput) async {
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
                    if tooLarge {
                        try await send(413, Discovery.status(413, reason: "RequestEntityTooLarge",
                                                             message: "request body over \(Self.maximumBody) bytes"),
                                       version: request.version, on: responses)
                        return
                    }
                    try await respond(to: request, body: body, on: responses, raw: raw)
                    if !request.isKeepAlive { return }
                }
            }
        }
    }

    private func respond(to head: HTTPRequestHead, body: ByteBuffer,
                         on out: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, raw: RawOutput) async throws {
        let authorization = head.headers["Authorization"].first
        let authorized = faults.withLockedValue { faults in
            faults.requests.append(head.uri)
            guard let token = faults.requiredToken, authorization != "Bearer \(token)" else { return true }
            faults.unauthorized += 1
            return false
        }
        guard authorized else {
            // As the API server answers a token it does not accept, before anything else.
            return try await send(401, Discovery.status(401, reason: "Unauthorized", message: "Unauthorized"),
                                  version: head.version, on: out)
        }
        let request = APIRequest(uri: head.uri)
        switch takeFailure(for: request) {
        case .status(let status, let body?):
            return try await send(status, text: body, version: head.version, on: out)
        case .status(let status, nil):
            return try await send(status, Discovery.status(status, reason: reason(for: status), message: "injected failure"),
                                  version: head.version, on: out)
        case .body(let body):
            return try await send(200, text: body, version: head.version, on: out)
        case .silence:
            // Until the server stops (or the client goes away and the connection is closed).
            try await Task.sleep(for: .seconds(3600))
            return
        case .unfinishedHead:
            try await raw.write("HTTP/\(head.version.major).\(head.version.minor) 200 OK\r\nContent-Type: application/json\r\nX-Slow: ")
            // Until the client gives up and the write fails, or the server stops.
            while true {
                try await Task.sleep(for: .milliseconds(100))
                try await raw.write("z")
            }
        case .bulkList(let resource, let bytes, let chunked):
            return try await sendBulkList(of: resource, bytes: bytes, chunked: chunked, version: head.version, on: out)
        case nil:
            break
        }
        switch request.path {
        case "/version": return try await send(200, Discovery.version, version: head.version, on: out)
        case "/api": return try await send(200, Discovery.apiVersions(serverAddress: "127.0.0.1:\(port)"), version: head.version, on: out)
        case "/apis": return try await send(200, Discovery.groups, version: head.version, on: out)
        default: break
        }
        if let resource = Resource.allCases.first(where: { $0.groupVersionPath == request.path }) {
            return try await send(200, Discovery.resourceList(resource), version: head.version, on: out)
        }
        guard let target = request.target else {
            return try await send(404, Discovery.status(404, reason: "NotFound", message: "the server could not find the requested resource"),
                                  version: head.version, on: out)
        }
        guard head.method == .GET else {
            let (status, answer) = write(head.method, target, request, contentType: head.headers["Content-Type"].first,
                                         body: String(buffer: body))
            return try await send(status, answer, version: head.version, on: out)
        }
        if let name = target.name {
            guard let object = store.objects(target.resource)["\(target.namespace ?? "default")/\(name)"] else {
                return try await send(404, Discovery.status(404, reason: "NotFound", message: "\(target.resource.rawValue) \"\(name)\" not found"),
                                      version: head.version, on: out)
            }
            return try await send(200, object, version: head.version, on: out)
        }
        if request.isWatch {
            return try await watch(target, request, version: head.version, on: out)
        }
        let (status, body) = list(target, request)
        try await send(status, body, version: head.version, on: out)
    }

    private func list(_ target: APIRequest.Target, _ request: APIRequest) -> (Int, JSON) {
        var revision = store.revision
        var start = ""
        if let token = request.query["continue"], !token.isEmpty {
            guard let decoded = ContinueToken(token) else {
                return (400, Discovery.status(400, reason: "BadRequest", message: "invalid continue token"))
            }
            (revision, start) = (decoded.revision, decoded.start)
        }
        guard let objects = store.snapshot(target.resource, at: revision) else {
            return (410, Self.expiredStatus)
        }
        let selected = objects.filter { key, _ in
            key > start && (target.namespace == nil || key.hasPrefix("\(target.namespace!)/"))
        }.sorted { $0.key < $1.key }
        let limit = request.query["limit"].flatMap(Int.init).flatMap { $0 > 0 ? $0 : nil } ?? selected.count
        let page = selected.prefix(limit)
        var metadata: JSON = ["resourceVersion": .string(String(revision))]
        if page.count < selected.count, let last = page.last {
            metadata["continue"] = .string(ContinueToken(revision: revision, start: last.key).text)
            metadata["remainingItemCount"] = .int(selected.count - page.count)
        }
        // As a real server: list items carry no kind or apiVersion.
        let items = page.map { _, object -> JSON in
            var item = object
            item["kind"] = nil
            item["apiVersion"] = nil
            return item
        }
        return (200, ["kind": .string("\(target.resource.kind)List"), "apiVersion": .string(target.resource.apiVersion),
                      "metadata": metadata, "items": .array(items)])
    }

    private func watch(_ target: APIRequest.Target, _ request: APIRequest, version: HTTPVersion,
                       on out: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>) async throws {
        let fromVersion = request.query["resourceVersion"] ?? ""
        var after: Int?
        if !fromVersion.isEmpty && fromVersion != "0" {
            guard let revision = Int(fromVersion) else {
                return try await send(400, Discovery.status(400, reason: "BadRequest", message: "invalid resourceVersion"),
                                      version: version, on: out)
            }
            after = revision
        }
        let allowBookmarks = request.query["allowWatchBookmarks"] == "true"
        let timeout = request.query["timeoutSeconds"].flatMap(Int.init) ?? 1800
        let stream = store.watch(target.resource, namespace: target.namespace, after: after)
        if stream == nil, faults.withLockedValue({ $0.expiredWatchAnswer }) == .status {
            return try await send(410, Self.expiredStatus, version: version, on: out)
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Transfer-Encoding", value: "chunked")
        try await out.write(.head(HTTPResponseHead(version: version, status: .ok, headers: headers)))
        guard let stream else {
            try await writeLine(["type": "ERROR", "object": Self.expiredStatus], on: out)
            return try await out.write(.end(nil))
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await message in stream {
                    if case .raw(let line) = message {
                        try await out.write(.body(.byteBuffer(ByteBuffer(string: line + "\n"))))
                        continue
                    }
                    guard case .event(let type, let object) = message else { break }
                    if type == "BOOKMARK" && !allowBookmarks { continue }
                    try await self.writeLine(["type": .string(type), "object": object], on: out)
                    if type == "ERROR" { break }
                }
            }
            group.addTask { try await Task.sleep(for: .seconds(timeout)) }
            try await group.next()
            group.cancelAll()
        }
        try await out.write(.end(nil))
    }

    private func sendBulkList(of resource: Resource, bytes: Int, chunked: Bool, version: HTTPVersion,
                              on out: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>) async throws {
        let list = BulkList(resource: resource, resourceVersion: store.revision, bytes: bytes)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        if chunked {
            headers.add(name: "Transfer-Encoding", value: "chunked")
        } else {
            headers.add(name: "Content-Length", value: "\(list.bytes)")
        }
        try await out.write(.head(HTTPResponseHead(version: version, status: .ok, headers: headers)))
        for chunk in list {
            // Waits while the client is not reading; fails once it has closed the connection.
            try await out.write(.body(.byteBuffer(chunk)))
            faults.withLockedValue { $0.bulkBytesSent += chunk.readableBytes }
        }
        try await out.write(.end(nil))
    }

    private func writeLine(_ event: JSON, on out: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>) async throws {
        try await out.write(.body(.byteBuffer(ByteBuffer(string: event.text + "\n"))))
    }

    private func send(_ status: Int, _ body: JSON, version: HTTPVersion,
                      on out: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>) async throws {
        try await send(status, text: body.text, version: version, on: out)
    }

    private func send(_ status: Int, text: String, version: HTTPVersion,
                      on out: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>) async throws {
        let bytes = ByteBuffer(string: text)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: "\(bytes.readableBytes)")
        try await out.write(.head(HTTPResponseHead(version: version, status: HTTPResponseStatus(statusCode: status), headers: headers)))
        try await out.write(.body(.byteBuffer(bytes)))
        try await out.write(.end(nil))
    }

    private func takeFailure(for request: APIRequest) -> Failure? {
        faults.withLockedValue { faults in
            guard let index = faults.failures.firstIndex(where: { request.matches($0.kind) }) else { return nil }
            return faults.failures.remove(at: index).failure
        }
    }

    private func reason(for status: Int) -> String {
        switch status {
        case 410: "Expired"
        case 429: "TooManyRequests"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        default: "InternalError"
        }
    }

    static let expiredStatus = Discovery.status(410, reason: "Expired", message: "too old resource version")
}

/// A request's path and query, and the collection it addresses.
struct APIRequest {
    struct Target {
        var resource: Resource
        var namespace: String?
        var name: String?
    }

    var path: String
    var query: [String: String]

    init(uri: String) {
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        path = String(parts[0])
        var query: [String: String] = [:]
        if parts.count > 1 {
            for pair in parts[1].split(separator: "&") {
                let keyValue = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let value = keyValue.count > 1 ? String(keyValue[1]) : ""
                query[String(keyValue[0])] = value.removingPercentEncoding ?? value
            }
        }
        self.query = query
    }

    var isWatch: Bool { query["watch"] == "1" || query["watch"] == "true" }

    /// `/api/v1[/namespaces/NS]/services[/NAME]` and the same under `/apis/discovery.k8s.io/v1`.
    var target: Target? {
        for resource in Resource.allCases where path.hasPrefix(resource.groupVersionPath + "/") {
            var rest = path.dropFirst(resource.groupVersionPath.count + 1).split(separator: "/").map(String.init)
            var namespace: String?
            if rest.count >= 2, rest[0] == "namespaces" {
                namespace = rest[1]
                rest.removeFirst(2)
            }
            guard let first = rest.first, first == resource.rawValue, rest.count <= 2 else { continue }
            return Target(resource: resource, namespace: namespace, name: rest.count == 2 ? rest[1] : nil)
        }
        return nil
    }

    func matches(_ kind: KubeAPIServer.RequestKind) -> Bool {
        switch kind {
        case .any: true
        case .list(let resource): target?.resource == resource && !isWatch
        case .watch(let resource): target?.resource == resource && isWatch
        }
    }
}

/// A list continuation: the snapshot's version and the last key served.
struct ContinueToken {
    var revision: Int
    var start: String

    init(revision: Int, start: String) {
        self.revision = revision
        self.start = start
    }

    init?(_ text: String) {
        guard let data = Data(base64Encoded: text), let decoded = String(data: data, encoding: .utf8),
              let separator = decoded.firstIndex(of: ":"), let revision = Int(decoded[..<separator]) else { return nil }
        self.init(revision: revision, start: String(decoded[decoded.index(after: separator)...]))
    }

    var text: String { Data("\(revision):\(start)".utf8).base64EncodedString() }
}
