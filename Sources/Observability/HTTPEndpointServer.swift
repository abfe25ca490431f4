import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// A complete response to a GET.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var contentType: String
    public var body: [UInt8]

    public init(status: Int, contentType: String = "text/plain; charset=utf-8", body: [UInt8]) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }
}

/// `HOST:PORT` as kube-proxy's `--healthz-bind-address` and `--metrics-bind-address` take it;
/// IPv6 hosts in brackets.
public struct BindAddress: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (0...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        // Only whether it parses matters: a host that is no IP address is refused, as nil.
        guard !host.isEmpty, (try? SocketAddress(ipAddress: host, port: port)) != nil else { return nil }
        self.init(host: host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A small HTTP/1.1 server for fixed GET endpoints (`/healthz`, `/metrics`). Runs until cancelled.
public struct HTTPEndpointServer: Service {
    public let address: BindAddress
    private let routes: [String: @Sendable () -> HTTPResponse]
    private let logger: Logger
    private let onListening: @Sendable (Int) -> Void

    /// `onListening` receives the bound port (useful with port 0).
    public init(address: BindAddress, routes: [String: @Sendable () -> HTTPResponse], logger: Logger,
                onListening: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.address = address
        self.routes = routes
        self.logger = logger
        self.onListening = onListening
    }

    public func run() async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: address.host, port: address.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: channel)
                }
            }
        let port = server.channel.localAddress?.port ?? address.port
        logger.info("serving", metadata: ["address": "\(BindAddress(host: address.host, port: port))",
                                          "paths": "\(routes.keys.sorted())"])
        onListening(port)
        try await server.executeThenClose { connections in
            try await withThrowingDiscardingTaskGroup { group in
                do {
                    for try await connection in connections {
                        group.addTask { await serve(connection) }
                    }
                } catch is CancellationError {
                    // Shutting down: not a failure of the server.
                }
            }
        }
    }

    private func serve(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>) async {
        do {
            try await connection.executeThenClose { requests, responses in
                var head: HTTPRequestHead?
                for try await part in requests {
                    switch part {
                    case .head(let requestHead):
                        head = requestHead
                    case .body:
                        break
                    case .end:
                        guard let request = head else { continue }
                        try await respond(to: request, on: responses)
                        if !request.isKeepAlive { return }
                    }
                }
            }
        } catch {
            logger.debug("connection ended", metadata: ["error": "\(error)"])
        }
    }

    private func respond(to request: HTTPRequestHead, on responses: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>)
        async throws {
        let path = String(request.uri.prefix { $0 != "?" })
        let response: HTTPResponse
        if request.method != .GET && request.method != .HEAD {
            response = HTTPResponse(status: 405, body: Array("method not allowed\n".utf8))
        } else if let route = routes[path] {
            response = route()
        } else {
            response = HTTPResponse(status: 404, body: Array("404 page not found\n".utf8))
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: response.contentType)
        headers.add(name: "Content-Length", value: "\(response.body.count)")
        headers.add(name: "X-Content-Type-Options", value: "nosniff")
        if !request.isKeepAlive { headers.add(name: "Connection", value: "close") }
        try await responses.write(.head(HTTPResponseHead(version: request.version,
                                                         status: HTTPResponseStatus(statusCode: response.status),
                                                         headers: headers)))
        if request.method != .HEAD { try await responses.write(.body(.byteBuffer(ByteBuffer(bytes: response.body)))) }
        try await responses.write(.end(nil))
    }
}
