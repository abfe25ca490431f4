import AsyncHTTPClient
import Foundation
import IPVS
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Netlink
@testable import Observability
import Proxy
import Testing

/// Real HTTP on loopback, on ports the kernel handed out a moment before; one test at a time, so
/// that no two servers are handed the same port.
@Suite(.serialized) struct HealthCheckServerTests {
    static var logger: Logger {
        var logger = Logger(label: "kipvs-test")
        logger.logLevel = .critical
        return logger
    }

    static let loopback = IPAddress("127.0.0.1")!

    static func web(_ endpoints: Int, namespace: String = "default", name: String = "web") -> HealthCheckNodePort {
        HealthCheckNodePort(namespace: namespace, name: name, localEndpoints: endpoints)
    }

    static func update(_ ports: [UInt16: HealthCheckNodePort]) -> HealthCheckServer.Update {
        HealthCheckServer.Update(ports: ports, addresses: [loopback])
    }

    /// A server whose agent health the test sets, and a client that never reuses connections.
    static func withServer(_ body: (HealthCheckServer, NIOLockedValueBox<Bool>, HTTPClient) async throws -> Void) async throws {
        let healthy = NIOLockedValueBox(true)
        let server = HealthCheckServer(proxyHealthy: { healthy.withLockedValue { $0 } }, logger: logger)
        var configuration = HTTPClient.Configuration()
        // A refused connection fails the request at once instead of being retried until the deadline.
        configuration.connectionPool.retryConnectionEstablishment = false
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            try await body(server, healthy, http)
        } catch {
            await server.stop()
            try await http.shutdown()
            throw error
        }
        await server.stop()
        try await http.shutdown()
    }

    @Test func theBodyIsKubeProxysByteForByte() {
        let ok = HealthCheckServer.response(for: Self.web(2), proxyHealthy: true)
        #expect(ok.status == 200)
        #expect(ok.contentType == "application/json")
        #expect(String(decoding: ok.body, as: UTF8.self) == """
            {
            \t"service": {
            \t\t"namespace": "default",
            \t\t"name": "web"
            \t},
            \t"localEndpoints": 2,
            \t"serviceProxyHealthy": true
            }
            """)
        #expect(HealthCheckServer.response(for: Self.web(0), proxyHealthy: true).status == 503)
        let sick = HealthCheckServer.response(for: Self.web(2), proxyHealthy: false)
        #expect(sick.status == 503)
        #expect(String(decoding: sick.body, as: UTF8.self).hasSuffix("\t\"serviceProxyHealthy\": false\n}"))
    }

    @Test func stringsAreEscapedForJSON() {
        #expect(HealthCheckServer.jsonString(#"a"b\c"#) == #""a\"b\\c""#)
        #expect(HealthCheckServer.jsonString("x\u{1}\n") == #""x\u0001\n""#)
    }

    @Test func anyPathGetsTheServicesAnswerWithKubeProxysHeaders() async throws {
        try await Self.withServer { server, _, http in
            let port = try await freePort()
            await server.apply(Self.update([port: Self.web(3)]))
            for path in ["/", "/healthz", "/anything?x=1"] {
                let answer = try await http.ask("http://127.0.0.1:\(port)\(path)")
                #expect(answer.status == 200)
                #expect(answer.headers["Content-Type"] == ["application/json"])
                #expect(answer.headers["X-Content-Type-Options"] == ["nosniff"])
                #expect(answer.headers["X-Load-Balancing-Endpoint-Weight"] == ["3"])
                let json = try #require(try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any])
                #expect(json["service"] as? [String: String] == ["namespace": "default", "name": "web"])
                #expect(json["localEndpoints"] as? Int == 3)
                #expect(json["serviceProxyHealthy"] as? Bool == true)
            }
            let head = try await http.ask("http://127.0.0.1:\(port)/", method: .HEAD)
            #expect(head.status == 200)
            #expect(head.body.isEmpty)
            #expect(head.headers["X-Load-Balancing-Endpoint-Weight"] == ["3"])
        }
    }

    @Test func theAnswerFollowsTheLocalEndpoints() async throws {
        try await Self.withServer { server, _, http in
            let port = try await freePort()
            let url = "http://127.0.0.1:\(port)/"
            await server.apply(Self.update([port: Self.web(0)]))
            let none = try await http.ask(url)
            #expect(none.status == 503)
            #expect(none.headers["X-Load-Balancing-Endpoint-Weight"] == ["0"])
            #expect(none.body.contains("\"localEndpoints\": 0,"))

            await server.apply(Self.update([port: Self.web(1)]))
            let one = try await http.ask(url)
            #expect(one.status == 200)
            #expect(one.headers["X-Load-Balancing-Endpoint-Weight"] == ["1"])

            await server.apply(Self.update([port: Self.web(0)]))
            #expect(try await http.ask(url).status == 503)
        }
    }

    @Test func anUnhealthyAgentAnswers503EvenWithEndpoints() async throws {
        try await Self.withServer { server, healthy, http in
            let port = try await freePort()
            await server.apply(Self.update([port: Self.web(2)]))
            healthy.withLockedValue { $0 = false }
            let sick = try await http.ask("http://127.0.0.1:\(port)/")
            #expect(sick.status == 503)
            #expect(sick.body.contains("\"serviceProxyHealthy\": false"))
            #expect(sick.headers["X-Load-Balancing-Endpoint-Weight"] == ["2"])
            healthy.withLockedValue { $0 = true }
            #expect(try await http.ask("http://127.0.0.1:\(port)/").status == 200)
        }
    }

    @Test func aMovedPortListensOnlyWhereItMovedTo() async throws {
        try await Self.withServer { server, _, http in
            let ports = try await freePorts(2)
            let (old, new) = (ports[0], ports[1])
            await server.apply(Self.update([old: Self.web(1)]))
            #expect(try await http.ask("http://127.0.0.1:\(old)/").status == 200)

            await server.apply(Self.update([new: Self.web(1)]))
            #expect(try await http.ask("http://127.0.0.1:\(new)/").status == 200)
            await #expect(throws: (any Error).self) { try await http.ask("http://127.0.0.1:\(old)/") }
            #expect(try await connectionRefused(old))
        }
    }

    @Test func aRemovedPortRefusesConnections() async throws {
        try await Self.withServer { server, _, http in
            let ports = try await freePorts(2)
            let (kept, removed) = (ports[0], ports[1])
            await server.apply(Self.update([kept: Self.web(1), removed: Self.web(1, name: "api")]))
            let api = try await http.ask("http://127.0.0.1:\(removed)/")
            #expect(api.body.contains("\"name\": \"api\""))

            await server.apply(Self.update([kept: Self.web(1)]))
            #expect(try await connectionRefused(removed))
            #expect(try await http.ask("http://127.0.0.1:\(kept)/").status == 200)
            #expect(server.bound == [.init(port: kept, address: Self.loopback)])
        }
    }

    @Test func aKeptAliveConnectionIsNotAnsweredOnceItsPortIsGone() async throws {
        try await Self.withServer { server, _, http in
            let port = try await freePort()
            await server.apply(Self.update([port: Self.web(1)]))
            #expect(try await http.ask("http://127.0.0.1:\(port)/", close: false).status == 200)
            await server.apply(Self.update([:]))
            await #expect(throws: (any Error).self) { try await http.ask("http://127.0.0.1:\(port)/", close: false) }
        }
    }

    @Test func aPortTakenBySomeoneElseIsTriedAgainAtTheNextUpdate() async throws {
        try await Self.withServer { server, _, http in
            let free = try await freePort()
            let holder = try await listener(on: 0)
            let busy = UInt16(holder.localAddress!.port!)
            let update = Self.update([free: Self.web(1), busy: Self.web(1, name: "api")])

            await server.apply(update)
            #expect(server.bound == [.init(port: free, address: Self.loopback)])
            #expect(try await http.ask("http://127.0.0.1:\(free)/").status == 200, "one busy port stops no other")

            try await holder.close()
            await server.apply(update)
            let api = try await http.ask("http://127.0.0.1:\(busy)/")
            #expect(api.status == 200)
            #expect(api.body.contains("\"name\": \"api\""))
        }
    }

    @Test func stopClosesEveryPortAndLaterUpdatesAreIgnored() async throws {
        try await Self.withServer { server, _, _ in
            let port = try await freePort()
            await server.apply(Self.update([port: Self.web(1)]))
            await server.stop()
            #expect(try await connectionRefused(port))
            await server.apply(Self.update([port: Self.web(1)]))
            #expect(try await connectionRefused(port))
        }
    }

    @Test func runAppliesUpdatesAndClosesWhenCancelled() async throws {
        try await Self.withServer { server, _, http in
            let port = try await freePort()
            let task = Task { await server.run() }
            server.update(Self.update([port: Self.web(1)]))
            try await eventually("listening") { (try? await http.ask("http://127.0.0.1:\(port)/"))?.status == 200 }
            task.cancel()
            await task.value
            #expect(try await connectionRefused(port))
        }
    }

    @Test func withoutNodePortAddressesEveryAddressOfEachFamilyListens() {
        let v4 = IPAddress("192.168.1.10")!, v6 = IPAddress("fd00:1::10")!
        let listen = HealthCheckNodePortUpdater.listenAddresses
        #expect(listen([v4], false).map(\.description) == ["0.0.0.0"])
        #expect(listen([v4, v6], false).map(\.description) == ["0.0.0.0", "::"])
        #expect(listen([v6], false).map(\.description) == ["::"])
        #expect(listen([], false).map(\.description) == ["0.0.0.0"])
        #expect(listen([v4, v6], true) == [v4, v6])
        #expect(listen([], true).isEmpty)
    }

    /// The whole path: a sync of a Local LoadBalancer Service opens its port with the node's count.
    @Test(arguments: [false, true])
    func theSyncLoopFeedsTheServer(restricted: Bool) async throws {
        try await Self.withServer { server, _, http in
            let port = try await freePort()
            let network = FakeNodeNetwork()
            network.nodeAddresses = [Self.loopback]
            let agent = Agent(ipvs: FakeIPVS(), network: network, node: NodeConfig(nodeName: "node-a"),
                              nodePortCIDRs: restricted ? [CIDR("127.0.0.0/8")!] : [])
            let source = StaticSource()
            let loop = SyncLoop(agent: agent, source: source, minSyncPeriod: .zero, syncPeriod: .seconds(30), logger: Self.logger)
            loop.observers = [HealthCheckNodePortUpdater(agent: agent, server: server, logger: Self.logger)]
            let task = Task { await server.run() }
            defer { task.cancel() }

            func state(_ nodes: [String]) -> ClusterState {
                let service = Service(metadata: ObjectMeta(name: "web"), type: .loadBalancer, clusterIPs: [IPAddress("10.96.0.10")!],
                                      ports: [Service.Port(port: 80, nodePort: 30080)], externalTrafficPolicy: .local,
                                      healthCheckNodePort: port)
                let slice = EndpointSlice(
                    metadata: ObjectMeta(name: "web-abc", labels: [WellKnown.serviceName: "web"]), addressType: .ipv4,
                    endpoints: nodes.enumerated().map { i, node in
                        EndpointSlice.Endpoint(addresses: [IPAddress("10.244.0.\(i + 5)")!], nodeName: node)
                    },
                    ports: [EndpointSlice.Port(port: 8080)])
                return ClusterState(services: [service], endpointSlices: [slice])
            }
            func weight() async -> String? {
                (try? await http.ask("http://127.0.0.1:\(port)/"))?.headers["X-Load-Balancing-Endpoint-Weight"].first
            }

            source.state = state(["node-a", "node-b", "node-a"])
            #expect(loop.runOnce())
            try await eventually("two local endpoints") { await weight() == "2" }
            source.state = state(["node-b"])
            #expect(loop.runOnce())
            try await eventually("no local endpoint") { await weight() == "0" }
            #expect(try await http.ask("http://127.0.0.1:\(port)/").status == 503)
            source.state = ClusterState()
            #expect(loop.runOnce())
            try await eventually("closed") { try await connectionRefused(port) }
            task.cancel()
            await task.value
        }
    }
}

extension HTTPClient {
    /// One request; with `close` the connection is not kept for another.
    func ask(_ url: String, method: HTTPMethod = .GET, close: Bool = true)
        async throws -> (status: Int, headers: HTTPHeaders, body: String) {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if close { request.headers.add(name: "Connection", value: "close") }
        let response = try await execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 16)
        return (Int(response.status.code), response.headers, String(buffer: body))
    }
}

/// A listening socket on loopback that accepts and never answers.
func listener(on port: Int) async throws -> any Channel {
    try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: port).get()
}

/// Ports nothing listens on: the kernel's choice, all held at once so they differ, then released.
func freePorts(_ count: Int) async throws -> [UInt16] {
    var channels: [any Channel] = []
    for _ in 0..<count { channels.append(try await listener(on: 0)) }
    let ports = channels.map { UInt16($0.localAddress!.port!) }
    for channel in channels { try await channel.close() }
    return ports
}

func freePort() async throws -> UInt16 {
    try await freePorts(1)[0]
}

/// Whether a TCP connection to the port on loopback is refused.
func connectionRefused(_ port: UInt16) async throws -> Bool {
    do {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: Int(port))).get()
        do {
            try await channel.close()
        } catch ChannelError.alreadyClosed {
            // Reset by the kernel: the listener closed while the connection waited to be accepted.
        }
        return false
    } catch let error as IOError {
        return Errno(rawValue: error.errnoCode) == .connectionRefused
    } catch let error as NIOConnectionError {
        return error.connectionErrors.contains { ($0.error as? IOError).map { Errno(rawValue: $0.errnoCode) } == .connectionRefused }
    }
}

/// Waits (at most 15 s) until `condition` holds.
func eventually(_ what: String, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(60)
    while try await !condition() {
        guard ContinuousClock.now < deadline else { throw TimedOut(what: what) }
        try await Task.sleep(for: .milliseconds(20))
    }
}
