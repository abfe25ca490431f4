import IPVS
import Netlink
import Testing

/// One behaviour every `IPVSHandle` shares with the kernel's IPVS (Linux 6.1): the same cases run
/// against `FakeIPVS` on any host (IPVSTests) and against `KernelIPVS` in a guest kernel
/// (KernelTests). Each case starts from an empty table and leaves its settings as it found them.
public struct IPVSContractCase: Sendable, CustomTestStringConvertible, CustomStringConvertible {
    public let name: String
    let body: @Sendable (any IPVSHandle) throws -> Void

    init(_ name: String, _ body: @escaping @Sendable (any IPVSHandle) throws -> Void) {
        self.name = name
        self.body = body
    }

    public func run(on handle: any IPVSHandle) throws { try body(handle) }

    public var description: String { name }
    public var testDescription: String { name }
}

public enum IPVSContract {
    public static let cases: [IPVSContractCase] = [
        IPVSContractCase("virtual servers are added, read back, updated and deleted", virtualServerLifecycle),
        IPVSContractCase("real servers are added, read back, updated and deleted", realServerLifecycle),
        IPVSContractCase("what exists or is missing is refused with the kernel's errno", existenceErrors),
        IPVSContractCase("values the kernel does not take are refused with its errno", valueErrors),
        IPVSContractCase("real server addresses that are no unicast address are refused", realServerAddressErrors),
        IPVSContractCase("the real servers of a missing virtual server are an empty list", missingVirtualServerHasNoRealServers),
        IPVSContractCase("deleting a virtual server takes its real servers with it", deleteTakesRealServers),
        IPVSContractCase("firewall-mark virtual servers, IPv4 and IPv6", firewallMarks),
        IPVSContractCase("IPv6 virtual and real servers", ipv6),
        IPVSContractCase("persistence, scheduler flags, timeout and netmask read back as written", persistence),
        IPVSContractCase("the scheduler none", noScheduler),
        IPVSContractCase("an IPv6 real server of an IPv4 virtual server by tunnel", mixedFamilyTunnel),
        IPVSContractCase("listings come in the kernel's order", listingOrder),
        IPVSContractCase("flush empties the table", flush),
        IPVSContractCase("a timeout of 0 leaves that timeout as it is", timeouts),
        IPVSContractCase("info is IPVS 1.2.1", info),
    ]

    static func ip(_ text: String) -> IPAddress { IPAddress(text)! }
    static func tcp(_ address: String, _ port: UInt16) -> VirtualServerKey { .service(.tcp, ip(address), port) }
    static func udp(_ address: String, _ port: UInt16) -> VirtualServerKey { .service(.udp, ip(address), port) }
    static func real(_ address: String, _ port: UInt16, _ forwarding: ForwardingMethod = .masquerade, weight: Int32 = 1,
                     upper: UInt32 = 0, lower: UInt32 = 0) -> RealServer {
        RealServer(key: RealServerKey(address: ip(address), port: port), forwarding: forwarding, weight: weight,
                   upperThreshold: upper, lowerThreshold: lower)
    }

    static let web = VirtualServer(key: tcp("10.96.0.10", 80), scheduler: "rr")
    static let missing = tcp("10.96.9.9", 9)

    /// Applies `operations` in one call; the errno each failed with (nil: it succeeded). Every
    /// failure must name its operation.
    static func errnos(_ handle: any IPVSHandle, _ operations: [IPVSOperation],
                       sourceLocation: SourceLocation = #_sourceLocation) throws -> [Errno?] {
        let failures = try handle.apply(operations)
        #expect(failures.keys.allSatisfy(operations.indices.contains), sourceLocation: sourceLocation)
        for (index, failure) in failures {
            #expect(failure.underlying.operation == operations[index].description, sourceLocation: sourceLocation)
        }
        return operations.indices.map { failures[$0]?.errno }
    }

    static func servers(_ handle: any IPVSHandle) throws -> Set<VirtualServer> {
        Set(try handle.virtualServers().map(\.server))
    }

    static func reals(_ handle: any IPVSHandle, _ key: VirtualServerKey) throws -> [RealServer] {
        try handle.realServers(of: key).map(\.server)
    }

    // MARK: cases

    static func virtualServerLifecycle(_ h: any IPVSHandle) throws {
        let dns = VirtualServer(key: udp("10.96.0.53", 53), scheduler: "lc")
        let sctp = VirtualServer(key: .service(.sctp, ip("10.96.0.99"), 3868), scheduler: "wlc")
        #expect(try errnos(h, [.addVirtualServer(web), .addVirtualServer(dns), .addVirtualServer(sctp)]) == [nil, nil, nil])
        #expect(try servers(h) == [web, dns, sctp])

        var changed = web
        changed.scheduler = "wrr"
        changed.flags = .persistent
        changed.timeout = 600
        #expect(try errnos(h, [.updateVirtualServer(changed)]) == [nil])
        #expect(try servers(h) == [changed, dns, sctp])

        #expect(try errnos(h, [.deleteVirtualServer(dns.key)]) == [nil])
        #expect(try servers(h) == [changed, sctp])
    }

    static func realServerLifecycle(_ h: any IPVSHandle) throws {
        let a = real("10.244.1.5", 8080)
        let b = real("10.244.1.6", 8080, .directRoute, weight: 3)
        let c = real("10.244.1.7", 80, .tunnel, weight: 0)
        #expect(try errnos(h, [.addVirtualServer(web), .addRealServer(web.key, a), .addRealServer(web.key, b),
                               .addRealServer(web.key, c)]) == [nil, nil, nil, nil])
        #expect(Set(try reals(h, web.key)) == [a, b, c])

        let b2 = real("10.244.1.6", 8080, .masquerade, weight: 5, upper: 100, lower: 50)
        #expect(try errnos(h, [.updateRealServer(web.key, b2)]) == [nil])
        #expect(Set(try reals(h, web.key)) == [a, b2, c])

        #expect(try errnos(h, [.deleteRealServer(web.key, a.key)]) == [nil])
        #expect(Set(try reals(h, web.key)) == [b2, c])
        #expect(try servers(h) == [web], "real servers leave their virtual server as it was")
    }

    /// One batch: each request is answered on its own, and a failure stops nothing after it.
    static func existenceErrors(_ h: any IPVSHandle) throws {
        let a = real("10.244.1.5", 8080)
        let result = try errnos(h, [
            .addVirtualServer(web),  // 0
            .addVirtualServer(web),  // 1 EEXIST
            .addVirtualServer(VirtualServer(key: web.key, scheduler: "nosuch")),  // 2 EEXIST: found before the scheduler is
            .updateVirtualServer(VirtualServer(key: missing, scheduler: "rr")),  // 3 ESRCH
            .deleteVirtualServer(missing),  // 4 ESRCH
            .addRealServer(missing, a),  // 5 ESRCH: the virtual server is looked up first
            .updateRealServer(missing, a),  // 6 ESRCH
            .deleteRealServer(missing, a.key),  // 7 ESRCH
            .updateRealServer(web.key, a),  // 8 ENOENT: no such real server
            .deleteRealServer(web.key, a.key),  // 9 ENOENT
            .addRealServer(web.key, a),  // 10
            .addRealServer(web.key, a),  // 11 EEXIST
            .addRealServer(web.key, real("10.244.1.5", 8080, weight: -1)),  // 12 ERANGE: values are checked before existence
            .deleteVirtualServer(web.key),  // 13
            .deleteVirtualServer(web.key),  // 14 ESRCH
        ])
        #expect(result == [
            nil, .fileExists, .fileExists, .noSuchProcess, .noSuchProcess,
            .noSuchProcess, .noSuchProcess, .noSuchProcess, .noSuchFileOrDirectory, .noSuchFileOrDirectory,
            nil, .fileExists, .outOfRange, nil, .noSuchProcess,
        ])
        #expect(try servers(h).isEmpty)
    }

    static func valueErrors(_ h: any IPVSHandle) throws {
        let a = real("10.244.1.5", 8080)
        let v6 = tcp("fd00::10", 80)
        let result = try errnos(h, [
            .addVirtualServer(VirtualServer(key: web.key, scheduler: "nosuch")),  // 0 ENOENT: no such scheduler module
            .addVirtualServer(web),  // 1
            .updateVirtualServer(VirtualServer(key: web.key, scheduler: "nosuch")),  // 2 ENOENT
            .addVirtualServer(VirtualServer(key: v6, scheduler: "rr", netmask: 0)),  // 3 EINVAL: prefix length 1...128
            .addVirtualServer(VirtualServer(key: v6, scheduler: "rr", netmask: 129)),  // 4 EINVAL
            .addRealServer(web.key, real("10.244.1.9", 80, weight: -1)),  // 5 ERANGE: a weight is an int
            .addRealServer(web.key, real("10.244.1.9", 80, upper: 5, lower: 10)),  // 6 ERANGE: lower above upper
            .addRealServer(web.key, real("10.244.1.9", 80, upper: 0, lower: 5)),  // 7 ERANGE: even when upper is 0 (none)
            .addRealServer(web.key, real("fd00::9", 80)),  // 8 EINVAL: another family, not by tunnel
            .addRealServer(web.key, a),  // 9
            .updateRealServer(web.key, real("10.244.1.5", 8080, weight: -1)),  // 10 ERANGE
            .updateRealServer(web.key, real("10.244.1.5", 8080, upper: 1, lower: 2)),  // 11 ERANGE
            .updateRealServer(web.key, real("fd00::9", 80)),  // 12 EINVAL
        ])
        #expect(result == [
            .noSuchFileOrDirectory, nil, .noSuchFileOrDirectory, .invalidArgument, .invalidArgument,
            .outOfRange, .outOfRange, .outOfRange, .invalidArgument, nil, .outOfRange, .outOfRange, .invalidArgument,
        ])
        #expect(try servers(h) == [web], "a refused update leaves the virtual server as it was")
        #expect(try reals(h, web.key) == [a], "a refused update leaves the real server as it was")
    }

    /// The kernel takes a unicast or local address only: not 0.0.0.0, broadcast or multicast for
    /// IPv4; not unspecified, multicast or (another host's) link-local for IPv6.
    static func realServerAddressErrors(_ h: any IPVSHandle) throws {
        let v6 = VirtualServer(key: tcp("fd00::10", 80), scheduler: "rr")
        let result = try errnos(h, [
            .addVirtualServer(web), .addVirtualServer(v6),
            .addRealServer(web.key, real("255.255.255.255", 80)),
            .addRealServer(web.key, real("224.0.0.1", 80)),
            .addRealServer(web.key, real("0.0.0.0", 80)),
            .addRealServer(v6.key, real("::", 80)),
            .addRealServer(v6.key, real("ff02::1", 80)),
            .addRealServer(v6.key, real("fe80::1234", 80)),
            .addRealServer(web.key, real("127.0.0.1", 80)),  // local: taken
            .addRealServer(v6.key, real("::1", 80)),  // local: taken
        ])
        #expect(result == [nil, nil] + Array(repeating: .invalidArgument, count: 6) + [nil, nil])
        #expect(try reals(h, web.key) == [real("127.0.0.1", 80)])
        #expect(try reals(h, v6.key) == [real("::1", 80)])
    }

    /// GET_DEST of a virtual server the kernel does not have dumps nothing: no ESRCH.
    static func missingVirtualServerHasNoRealServers(_ h: any IPVSHandle) throws {
        #expect(try reals(h, missing).isEmpty)
        #expect(try reals(h, .firewallMark(.inet, 77)).isEmpty)
    }

    static func deleteTakesRealServers(_ h: any IPVSHandle) throws {
        let a = real("10.244.1.5", 8080)
        #expect(try errnos(h, [.addVirtualServer(web), .addRealServer(web.key, a), .deleteVirtualServer(web.key),
                               .addVirtualServer(web)]) == [nil, nil, nil, nil])
        #expect(try reals(h, web.key).isEmpty)
        #expect(try errnos(h, [.deleteRealServer(web.key, a.key)]) == [.noSuchFileOrDirectory])
    }

    /// A mark is a key of its own per family; a real server of a mark keeps its port.
    static func firewallMarks(_ h: any IPVSHandle) throws {
        let mark4 = VirtualServer(key: .firewallMark(.inet, 7), scheduler: "wrr")
        let mark6 = VirtualServer(key: .firewallMark(.inet6, 7), scheduler: "rr")
        let a = real("10.244.1.5", 8080, weight: 2)
        let b = real("10.244.1.6", 0)
        let c = real("fd00:1::5", 443)
        #expect(try errnos(h, [
            .addVirtualServer(mark4), .addVirtualServer(mark6),
            .addRealServer(mark4.key, a), .addRealServer(mark4.key, b), .addRealServer(mark6.key, c),
            .addVirtualServer(mark4),  // EEXIST
            .deleteVirtualServer(.firewallMark(.inet, 8)),  // ESRCH
            .addRealServer(mark6.key, real("10.244.1.7", 80)),  // EINVAL: an IPv4 masq real server of an IPv6 mark
        ]) == [nil, nil, nil, nil, nil, .fileExists, .noSuchProcess, .invalidArgument])
        #expect(try servers(h) == [mark4, mark6])
        #expect(Set(try reals(h, mark4.key)) == [a, b])
        #expect(try reals(h, mark6.key) == [c])

        var changed = mark4
        changed.flags = .persistent
        changed.timeout = 30
        #expect(try errnos(h, [.updateVirtualServer(changed), .deleteRealServer(mark4.key, b.key), .deleteVirtualServer(mark6.key)])
            == [nil, nil, nil])
        #expect(try servers(h) == [changed])
        #expect(try reals(h, mark4.key) == [a])
    }

    static func ipv6(_ h: any IPVSHandle) throws {
        let https = VirtualServer(key: tcp("fd00::10", 443), scheduler: "lc", flags: .persistent, timeout: 30, netmask: 64)
        let dns = VirtualServer(key: udp("fd00::53", 53), scheduler: "rr")
        let a = real("fd00:1::5", 8443, weight: 2)
        let b = real("fd00:1::6", 8443, .directRoute)
        #expect(try errnos(h, [.addVirtualServer(https), .addVirtualServer(dns), .addRealServer(https.key, a),
                               .addRealServer(https.key, b), .addRealServer(dns.key, real("10.244.1.5", 53))])
            == [nil, nil, nil, nil, .invalidArgument])
        #expect(try servers(h) == [https, dns])
        #expect(dns.netmask == 128, "IPv6 needs a prefix length even without persistence")
        #expect(Set(try reals(h, https.key)) == [a, b])

        let b2 = real("fd00:1::6", 8443, .masquerade, weight: 7)
        #expect(try errnos(h, [.updateRealServer(https.key, b2), .deleteRealServer(https.key, a.key),
                               .deleteRealServer(https.key, a.key)]) == [nil, nil, .noSuchFileOrDirectory])
        #expect(try reals(h, https.key) == [b2])
    }

    static func persistence(_ h: any IPVSHandle) throws {
        let written = [
            VirtualServer(key: web.key, scheduler: "sh", flags: [.persistent, .schedulerFallback, .schedulerPort], timeout: 10800),
            VirtualServer(key: udp("10.96.0.53", 53), scheduler: "rr", flags: .onePacket),
            VirtualServer(key: .service(.sctp, ip("10.96.0.99"), 3868), scheduler: "wlc", flags: .persistent, timeout: 60,
                          netmask: 0xffff_ff00),
            VirtualServer(key: udp("10.96.0.54", 53), scheduler: "mh", flags: [.persistent, .schedulerPort], timeout: 1,
                          netmask: 0xffff_0000),
        ]
        #expect(try errnos(h, written.map { .addVirtualServer($0) }) == [nil, nil, nil, nil])
        #expect(try servers(h) == Set(written))
        #expect(try h.virtualServers().allSatisfy { !$0.server.flags.contains(.hashed) }, "HASHED is the kernel's own")

        // SET replaces flags, timeout and netmask: persistence can be turned off again.
        let plain = VirtualServer(key: web.key, scheduler: "rr")
        let wider = VirtualServer(key: written[2].key, scheduler: "wlc", flags: .persistent, timeout: 120, netmask: 0xff00_0000)
        #expect(try errnos(h, [.updateVirtualServer(plain), .updateVirtualServer(wider)]) == [nil, nil])
        #expect(try servers(h) == [plain, written[1], wider, written[3]])
    }

    static func noScheduler(_ h: any IPVSHandle) throws {
        let none = VirtualServer(key: web.key, scheduler: "none")
        #expect(try errnos(h, [.addVirtualServer(none), .addRealServer(web.key, real("10.244.1.5", 80))]) == [nil, nil])
        #expect(try servers(h) == [none])
        #expect(try errnos(h, [.updateVirtualServer(web)]) == [nil])
        #expect(try servers(h) == [web])
    }

    /// Only tunnelling can reach a real server of the other family; the other methods are refused.
    static func mixedFamilyTunnel(_ h: any IPVSHandle) throws {
        let tunnel = real("fd00:1::5", 80, .tunnel)
        #expect(try errnos(h, [.addVirtualServer(web), .addRealServer(web.key, tunnel),
                               .addRealServer(web.key, real("fd00:1::6", 80, .directRoute))]) == [nil, nil, .invalidArgument])
        #expect(try reals(h, web.key) == [tunnel])
        var heavier = tunnel
        heavier.weight = 4
        #expect(try errnos(h, [.updateRealServer(web.key, heavier)]) == [nil])
        #expect(try reals(h, web.key) == [heavier])
    }

    /// The kernel dumps its address table before its firewall-mark table, each in an order of its
    /// own (hash buckets salted per network namespace). Real servers come newest first (each is
    /// put at the head of its virtual server's list); an update keeps its place.
    static func listingOrder(_ h: any IPVSHandle) throws {
        let marks: [VirtualServerKey] = [.firewallMark(.inet, 1), .firewallMark(.inet6, 2)]
        let addresses = [tcp("10.96.0.30", 80), udp("10.96.0.20", 53), tcp("fd00::30", 80)]
        let interleaved = [marks[0], addresses[0], addresses[1], marks[1], addresses[2]]
        #expect(try errnos(h, interleaved.map { .addVirtualServer(VirtualServer(key: $0, scheduler: "rr")) }) == [nil, nil, nil, nil, nil])
        let listed = try h.virtualServers().map(\.server.key)
        #expect(Set(listed.prefix(3)) == Set(addresses))
        #expect(Set(listed.suffix(2)) == Set(marks))

        let order = ["10.244.1.9", "10.244.1.1", "10.244.1.5", "10.244.1.3"].map { real($0, 80) }
        #expect(try errnos(h, order.map { .addRealServer(addresses[0], $0) }).allSatisfy { $0 == nil })
        let first = try reals(h, addresses[0]).map(\.key.description)
        #expect(first == order.reversed().map(\.key.description))
        var updated = order[1]
        updated.weight = 9
        #expect(try errnos(h, [.updateRealServer(addresses[0], updated), .deleteRealServer(addresses[0], order[2].key),
                               .addRealServer(addresses[0], order[2])]) == [nil, nil, nil])
        let second = try reals(h, addresses[0])
        #expect(second.map(\.key.description) == [order[2], order[3], updated, order[0]].map(\.key.description))
        #expect(second.first { $0.key == updated.key } == updated)
    }

    static func flush(_ h: any IPVSHandle) throws {
        #expect(try errnos(h, [.addVirtualServer(web), .addRealServer(web.key, real("10.244.1.5", 80)),
                               .addVirtualServer(VirtualServer(key: .firewallMark(.inet, 3), scheduler: "rr"))]) == [nil, nil, nil])
        try h.flush()
        #expect(try h.virtualServers().isEmpty)
        #expect(try reals(h, web.key).isEmpty)
        try h.flush()
        #expect(try h.virtualServers().isEmpty, "flushing an empty table is no error")
    }

    static func timeouts(_ h: any IPVSHandle) throws {
        let before = try h.timeouts()
        try h.setTimeouts(Timeouts(tcp: 0, tcpFin: before.tcpFin + 1, udp: 0))
        #expect(try h.timeouts() == Timeouts(tcp: before.tcp, tcpFin: before.tcpFin + 1, udp: before.udp))
        try h.setTimeouts(Timeouts(tcp: before.tcp + 1, tcpFin: 0, udp: before.udp + 1))
        #expect(try h.timeouts() == Timeouts(tcp: before.tcp + 1, tcpFin: before.tcpFin + 1, udp: before.udp + 1))
        try h.setTimeouts(before)
        #expect(try h.timeouts() == before)
    }

    static func info(_ h: any IPVSHandle) throws {
        let info = try h.info()
        #expect(info.versionString == "1.2.1")
        #expect(info.connectionTableSize > 0)
    }
}
