import IPVS
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Proxy
import ServiceLifecycle

/// kube-proxy's service health server: on each health-check node port, load balancers ask whether
/// this node has ready endpoints of the Service (200) or not (503). Any method and path get the same
/// answer. Listeners open and close as `update` is called; runs until cancelled or shut down.
public final class HealthCheckServer: ServiceLifecycle.Service, Sendable {
    /// What to serve: every port listens on every address.
    public struct Update: Hashable, Sendable {
        public var ports: [UInt16: HealthCheckNodePort]
        public var addresses: [IPAddress]

        public init(ports: [UInt16: HealthCheckNodePort], addresses: [IPAddress]) {
            self.ports = ports
            self.addresses = addresses
        }
    }

    struct Listener: Hashable, Comparable, CustomStringConvertible {
        var port: UInt16
        var address: IPAddress

        static func < (a: Listener, b: Listener) -> Bool { (a.port, a.address) < (b.port, b.address) }

        var description: String { address.isIPv4 ? "\(address):\(port)" : "[\(address)]:\(port)" }
    }

    private enum Socket {
        case binding
        case bound(any Channel)
    }

    private struct State {
        var ports: [UInt16: HealthCheckNodePort] = [:]
        /// Listeners being opened or open; a connection whose listener is not here is closed unanswered.
        var listeners: [Listener: Socket] = [:]
        var stopped = false
    }

    private let state = NIOLockedValueBox(State())
    private let proxyHealthy: @Sendable () -> Bool
    private let logger: Logger
    private let updates: AsyncStream<Update>
    private let pending: AsyncStream<Update>.Continuation

    /// `proxyHealthy` is the agent's own health, as `/healthz` reports it: when false every port answers 503.
    public init(proxyHealthy: @escaping @Sendable () -> Bool, logger: Logger) {
        self.proxyHealthy = proxyHealthy
        self.logger = logger
        // Only the newest update matters: each carries the whole table.
        (updates, pending) = AsyncStream.makeStream(of: Update.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Hands the server a new table; `run` applies it. Listeners that could not be opened are tried again.
    public func update(_ update: Update) {
        pending.yield(update)
    }

    public func run() async {
        for await update in updates.cancelOnGracefulShutdown() {
            await apply(update)
        }
        await stop()
    }

    /// Opens and closes listeners to match `update`. One call at a time.
    func apply(_ update: Update) async {
        let wanted = Set(update.ports.keys.flatMap { port in update.addresses.map { Listener(port: port, address: $0) } })
        let (stale, missing) = state.withLockedValue { state -> ([(Listener, Socket)], [Listener]) in
            guard !state.stopped else { return ([], []) }
            state.ports = update.ports
            let stale = state.listeners.filter { !wanted.contains($0.key) }
            for listener in stale.keys { state.listeners[listener] = nil }
            let missing = wanted.filter { state.listeners[$0] == nil }.sorted()
            for listener in missing { state.listeners[listener] = .binding }
            return (stale.map { ($0.key, $0.value) }, missing)
        }
        // Closed first: a port moving from the wildcard to one address needs the wildcard gone.
        for (listener, socket) in stale {
            guard case .bound(let channel) = socket else { continue }
            await close(channel, listener)
        }
        for listener in missing {
            let service = update.ports[listener.port]?.qualifiedName ?? ""
            do {
                let channel = try await bind(listener)
                let keep = state.withLockedValue { state in
                    guard !state.stopped, state.listeners[listener] != nil else { return false }
                    state.listeners[listener] = .bound(channel)
                    return true
                }
                if keep {
                    logger.debug("health check node port open", metadata: ["service": "\(service)", "address": "\(listener)"])
                } else {
                    await close(channel, listener)
                }
            } catch {
                _ = state.withLockedValue { $0.listeners.removeValue(forKey: listener) }
                logger.error("health check node port not opened; trying again at the next sync", metadata: [
                    "service": "\(service)", "port": "\(listener.port)", "address": "\(listener)", "error": "\(error)",
                ])
            }
        }
    }

    /// The listeners open now.
    var bound: [Listener] {
        state.withLockedValue { state in
            state.listeners.compactMap { listener, socket in
                if case .bound = socket { return listener }
                return nil
            }.sorted()
        }
    }

    /// Closes every listener; later updates are ignored.
    func stop() async {
        let sockets = state.withLockedValue { state in
            state.stopped = true
            defer { state.listeners = [:] }
            return state.listeners
        }
        for (listener, socket) in sockets {
            guard case .bound(let channel) = socket else { continue }
            await close(channel, listener)
        }
    }

    private func close(_ channel: any Channel, _ listener: Listener) async {
        do {
            try await channel.close()
            logger.debug("health check node port closed", metadata: ["address": "\(listener)"])
        } catch {
            logger.error("health check node port not closed", metadata: ["address": "\(listener)", "error": "\(error)"])
        }
    }

    private func bind(_ listener: Listener) async throws -> any Channel {
        var bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        if !listener.address.isIPv4 {
            // Otherwise `::` also takes the IPv4 port, and the `0.0.0.0` listener fails with EADDRINUSE.
            bootstrap = bootstrap.serverChannelOption(ChannelOptions.Types.SocketOption(level: .ipv6, name: .ipv6_v6only),
                                                      value: 1)
        }
        bootstrap = bootstrap.childChannelInitializer { [self] channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                try channel.pipeline.syncOperations.addHandler(HealthCheckHandler { [self] in answer(listener) })
            }
        }
        return try await bootstrap.bind(to: SocketAddress(ipAddress: "\(listener.address)", port: Int(listener.port))).get()
    }

    /// The answer for a request that came in through `listener`; nil once it is closing.
    private func answer(_ listener: Listener) -> (response: HTTPResponse, weight: Int)? {
        let entry = state.withLockedValue { state in state.listeners[listener] == nil ? nil : state.ports[listener.port] }
        guard let entry else { return nil }
        return (Self.response(for: entry, proxyHealthy: proxyHealthy()), entry.localEndpoints)
    }

    /// 200 when the Service has a ready endpoint here and the agent is healthy, else 503; the body
    /// is kube-proxy's, byte for byte.
    static func response(for entry: HealthCheckNodePort, proxyHealthy: Bool) -> HTTPResponse {
        let body = """
            {
            \t"service": {
            \t\t"namespace": \(jsonString(entry.namespace)),
            \t\t"name": \(jsonString(entry.name))
            \t},
            \t"localEndpoints": \(entry.localEndpoints),
            \t"serviceProxyHealthy": \(proxyHealthy)
            }
            """
        return HTTPResponse(status: entry.localEndpoints > 0 && proxyHealthy ? 200 : 503, contentType: "application/json",
                            body: Array(body.utf8))
    }

    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// Answers every complete request on one connection; closes it when the listener is going away.
private final class HealthCheckHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let answer: () -> (response: HTTPResponse, weight: Int)?
    private var head: HTTPRequestHead?

    init(answer: @escaping () -> (response: HTTPResponse, weight: Int)?) {
        self.answer = answer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            head = request
        case .body:
            break
        case .end:
            guard let request = head else { return }
            head = nil
            respond(to: request, context: context)
        }
    }

    private func respond(to request: HTTPRequestHead, context: ChannelHandlerContext) {
        guard let (response, weight) = answer() else {
            context.close(promise: nil)
            return
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: response.contentType)
        headers.add(name: "X-Content-Type-Options", value: "nosniff")
        headers.add(name: "X-Load-Balancing-Endpoint-Weight", value: "\(weight)")
        headers.add(name: "Content-Length", value: "\(response.body.count)")
        if !request.isKeepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version,
                                                             status: HTTPResponseStatus(statusCode: response.status),
                                                             headers: headers))), promise: nil)
        if request.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: response.body)))), promise: nil)
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
        if !request.isKeepAlive {
            let channel = context.channel
            written.futureResult.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}

/// Feeds a `HealthCheckServer` from the sync loop: after each sync, the health-check node ports of
/// the state that sync put in place, with their local endpoint counts, on the addresses NodePorts use.
/// Every sync hands the table over again, so a port that could not be opened is tried again.
public final class HealthCheckNodePortUpdater: SyncObserver {
    private let agent: Agent
    private let server: HealthCheckServer
    private let logger: Logger
    /// Load balancers with a health-check node port, and their slices: all the table needs.
    private var state: ClusterState?
    private var servicesWithPorts: Set<ObjectName> = []
    private var last: HealthCheckServer.Update?
    private var warnings: [DesiredState.Warning] = []

    public init(agent: Agent, server: HealthCheckServer, logger: Logger) {
        self.agent = agent
        self.server = server
        self.logger = logger
    }

    public func sourceChanged(_ changes: ClusterChanges, objects: ClusterObjects) {
        // Only changes that touch a Service with a health-check node port (before or after) count.
        let touched = changes.services.contains { name, service in
            servicesWithPorts.contains(name) || service?.healthCheckNodePort != nil
        } || changes.endpointSlices.contains { name, slice in
            let service = (slice ?? nil)?.serviceName ?? objects.endpointSlices[name]?.serviceName
            return service.map { servicesWithPorts.contains(ObjectName(namespace: name.namespace, name: $0)) } ?? true
        }
        guard state == nil || touched else { return }
        servicesWithPorts = Set(objects.services.filter { $0.value.healthCheckNodePort != nil }.keys)
        let names = servicesWithPorts.sorted()
        state = ClusterState(services: names.compactMap { objects.services[$0] },
                             endpointSlices: names.flatMap { objects.slices(of: $0) })
    }

    public func syncFinished(_ sync: SyncRecord) {
        // A sync that could not finish left the kernel as before: the answers stay as they were.
        if case .success = sync.result, let state {
            let table = HealthCheckNodePorts(state, nodeName: agent.node.nodeName)
            if table.warnings != warnings {
                for warning in table.warnings {
                    logger.warning("health check not served", metadata: ["object": "\(warning.object)",
                                                                         "problem": "\(warning.message)"])
                }
                warnings = table.warnings
            }
            last = HealthCheckServer.Update(
                ports: table.ports,
                addresses: Self.listenAddresses(nodePortAddresses: agent.node.nodePortAddresses,
                                                restricted: !agent.nodePortCIDRs.isEmpty))
        }
        if let last { server.update(last) }
    }

    /// With `--nodeport-addresses`, the node addresses it selects; without, the wildcard of each
    /// family the node has (IPv4 when it reports none), as kube-proxy listens on all addresses.
    static func listenAddresses(nodePortAddresses: [IPAddress], restricted: Bool) -> [IPAddress] {
        if restricted { return nodePortAddresses }
        let families = Set(nodePortAddresses.map(\.family))
        var wildcards: [IPAddress] = []
        if families.isEmpty || families.contains(.inet) { wildcards.append(IPAddress(family: .inet, high: 0, low: 0)) }
        if families.contains(.inet6) { wildcards.append(IPAddress(family: .inet6, high: 0, low: 0)) }
        return wildcards
    }
}
