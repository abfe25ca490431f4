import Testing
@testable import IPVS
@testable import IPVSText

/// A table touching every feature of the save and list formats, in a scrambled dump order.
enum SampleTable {
    static func address(_ text: String) -> IPAddress {
        guard let address = IPAddress(text) else { fatalError("not an address: \(text)") }
        return address
    }

    static func tcp(_ host: String, _ port: UInt16) -> VirtualServerKey { .service(.tcp, address(host), port) }

    static func real(_ host: String, _ port: UInt16, _ forwarding: ForwardingMethod = .masquerade, weight: Int32 = 1,
                     active: UInt32 = 0, inactive: UInt32 = 0) -> RealServerStatus {
        RealServerStatus(server: RealServer(address: address(host), port: port, forwarding: forwarding, weight: weight),
                         activeConnections: active, inactiveConnections: inactive)
    }

    static let clusterIP = VirtualServer(key: tcp("10.96.0.10", 80), scheduler: "rr")
    static let dns = VirtualServer(key: .service(.udp, address("10.96.0.10"), 53), scheduler: "rr", flags: .onePacket)
    static let nodePort = VirtualServer(key: tcp("192.168.1.10", 443), flags: .persistent, timeout: 10800)
    static let anyPort = VirtualServer(key: tcp("10.96.0.20", 0), flags: .persistent, timeout: 300,
                                      netmask: 0xffff_ff00, persistenceEngine: "sip")
    static let ipv6 = VirtualServer(key: tcp("2001:db8::10", 443), scheduler: "sh",
                                    flags: [.persistent, .schedulerFallback, .schedulerPort], timeout: 60, netmask: 64)
    static let sctp = VirtualServer(key: .service(.sctp, address("10.96.0.30"), 3868), scheduler: "mh",
                                    flags: .schedulerPort)
    static let mark = VirtualServer(key: .firewallMark(.inet, 7), scheduler: "rr")
    static let mark6 = VirtualServer(key: .firewallMark(.inet6, 7), scheduler: "rr")

    static let table: [(VirtualServerStatus, [RealServerStatus])] = [
        (VirtualServerStatus(server: mark6), [real("2001:db8::5", 0)]),
        (VirtualServerStatus(server: ipv6), [real("2001:db8::2", 443), real("2001:db8::1", 8443)]),
        (VirtualServerStatus(server: clusterIP), [
            real("10.244.2.7", 8080, active: 4_294_967_295),
            real("10.244.1.5", 8081, weight: 2),
            real("10.244.1.5", 8080, active: 12, inactive: 345),
        ]),
        (VirtualServerStatus(server: sctp), [real("10.244.3.3", 3868, weight: 0)]),
        (VirtualServerStatus(server: nodePort), [
            real("192.168.1.21", 443, .tunnel, weight: 3),
            real("192.168.1.20", 443, .directRoute, active: 3, inactive: 7),
        ]),
        (VirtualServerStatus(server: mark), [real("10.0.0.1", 0, .directRoute)]),
        (VirtualServerStatus(server: dns), [real("10.244.1.9", 53, inactive: 2)]),
        (VirtualServerStatus(server: anyPort), []),
    ]

    /// `ipvsadm -S -n` for `table`: 192.168.1.10 sorts before 10.96.0.x because libipvs compares
    /// addresses by wrapping subtraction; TCP < UDP < SCTP; IPv4 < IPv6; firewall marks last.
    static let saved = [
        "-A -t 192.168.1.10:443 -s wlc -p 10800",
        "-a -t 192.168.1.10:443 -r 192.168.1.20:443 -g -w 1",
        "-a -t 192.168.1.10:443 -r 192.168.1.21:443 -i -w 3 --tun-type ipip",
        "-A -t 10.96.0.10:80 -s rr",
        "-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1",
        "-a -t 10.96.0.10:80 -r 10.244.1.5:8081 -m -w 2",
        "-a -t 10.96.0.10:80 -r 10.244.2.7:8080 -m -w 1",
        "-A -t 10.96.0.20:0 -s wlc -p 300 -M 255.255.255.0 --pe sip",
        "-A -u 10.96.0.10:53 -s rr -o",
        "-a -u 10.96.0.10:53 -r 10.244.1.9:53 -m -w 1",
        "-A --sctp-service 10.96.0.30:3868 -s mh -b mh-port",
        "-a --sctp-service 10.96.0.30:3868 -r 10.244.3.3:3868 -m -w 0",
        "-A -t [2001:db8::10]:443 -s sh -p 60 -M 64 -b sh-fallback,sh-port",
        "-a -t [2001:db8::10]:443 -r [2001:db8::1]:8443 -m -w 1",
        "-a -t [2001:db8::10]:443 -r [2001:db8::2]:443 -m -w 1",
        "-A -f 7 -s rr",
        "-a -f 7 -r 10.0.0.1:0 -g -w 1",
        "-A -f 7 -6 -s rr",
        "-a -f 7 -6 -r [2001:db8::5]:0 -m -w 1",
    ].map { $0 + "\n" }.joined()
}

/// Golden text derived from ipvsadm 1.31 `print_service_entry` with `FMT_RULE`.
@Suite struct SaveFormatTests {
    typealias Table = [(VirtualServerStatus, [RealServerStatus])]

    @Test func wholeTableMatchesIpvsadm() {
        #expect(SaveFormat.render(SampleTable.table) == SampleTable.saved)
    }

    @Test func emptyTableSavesNothing() {
        #expect(SaveFormat.render([]) == "")
    }

    /// `fwd_switch`: local-node is written as `-g`; bypass has no switch and prints `(null)`.
    @Test func forwardingSwitches() {
        let table: Table = [(VirtualServerStatus(server: SampleTable.clusterIP), [
            SampleTable.real("10.0.0.1", 80, .localNode),
            SampleTable.real("10.0.0.2", 80, .bypass),
        ])]
        #expect(SaveFormat.render(table) == """
            -A -t 10.96.0.10:80 -s rr
            -a -t 10.96.0.10:80 -r 10.0.0.1:80 -g -w 1
            -a -t 10.96.0.10:80 -r 10.0.0.2:80 (null) -w 1

            """)
    }

    /// `print_sched_flags`: `flag-N` for schedulers other than sh and mh; sh and mh have no name
    /// for the third flag, so ipvsadm writes `-b ` with nothing after it.
    @Test(arguments: [
        ("rr", VirtualServerFlags([.schedulerFallback, .schedulerPort, .scheduler3]), " -b flag-1,flag-2,flag-3"),
        ("sh", VirtualServerFlags.schedulerFallback, " -b sh-fallback"),
        ("mh", VirtualServerFlags([.schedulerFallback, .schedulerPort]), " -b mh-fallback,mh-port"),
        ("sh", VirtualServerFlags.scheduler3, " -b "),
        ("rr", VirtualServerFlags.onePacket, " -o"),
    ])
    func schedulerFlags(scheduler: String, flags: VirtualServerFlags, suffix: String) {
        let server = VirtualServer(key: SampleTable.tcp("10.0.0.1", 80), scheduler: scheduler, flags: flags)
        #expect(SaveFormat.render([(VirtualServerStatus(server: server), [])])
            == "-A -t 10.0.0.1:80 -s \(scheduler)\(suffix)\n")
    }

    /// The mask is written only for persistent services, and only when it is not per-client; the
    /// persistence engine is written either way.
    @Test func persistenceOptions() {
        let servers = [
            VirtualServer(key: SampleTable.tcp("10.0.0.1", 80), netmask: 0xffff_0000, persistenceEngine: "sip"),
            VirtualServer(key: SampleTable.tcp("10.0.0.2", 80), flags: .persistent, timeout: 1),
            VirtualServer(key: SampleTable.tcp("10.0.0.3", 80), flags: .persistent, timeout: 2, netmask: 0),
            VirtualServer(key: SampleTable.tcp("fd00::1", 80), flags: .persistent, timeout: 3, netmask: 128),
            VirtualServer(key: .firewallMark(.inet6, 1), flags: .persistent, timeout: 4, netmask: 48),
        ]
        #expect(SaveFormat.render(servers.map { (VirtualServerStatus(server: $0), []) }) == """
            -A -t 10.0.0.1:80 -s wlc --pe sip
            -A -t 10.0.0.2:80 -s wlc -p 1
            -A -t 10.0.0.3:80 -s wlc -p 2 -M 0.0.0.0
            -A -t [fd00::1]:80 -s wlc -p 3
            -A -f 1 -6 -s wlc -p 4 -M 48

            """)
    }

    // MARK: Order

    private func savedLines(_ keys: [VirtualServerKey]) -> [String] {
        SaveFormat.render(keys.map { (VirtualServerStatus(server: VirtualServer(key: $0)), []) })
            .split(separator: "\n").map(String.init)
    }

    /// `ipvs_cmp_services` subtracts addresses as unsigned 32-bit numbers and reads the result as
    /// an int, so an address more than 2^31 above another sorts before it.
    @Test func addressesFarApartSortBackwards() {
        let keys = [SampleTable.tcp("10.0.0.1", 80), SampleTable.tcp("172.17.0.1", 80), SampleTable.tcp("10.0.0.1", 79)]
        #expect(savedLines(keys) == [
            "-A -t 172.17.0.1:80 -s wlc",
            "-A -t 10.0.0.1:79 -s wlc",
            "-A -t 10.0.0.1:80 -s wlc",
        ])
    }

    /// 10.0.0.1 < 100.0.0.1 < 200.0.0.1 < 10.0.0.1: no total order, so the result depends on the
    /// input order and on glibc's merge sort, exactly as ipvsadm's does.
    @Test(arguments: [
        (["10.0.0.1", "100.0.0.1", "200.0.0.1"], ["10.0.0.1", "100.0.0.1", "200.0.0.1"]),
        (["200.0.0.1", "100.0.0.1", "10.0.0.1"], ["200.0.0.1", "10.0.0.1", "100.0.0.1"]),
        (["100.0.0.1", "200.0.0.1", "10.0.0.1"], ["100.0.0.1", "200.0.0.1", "10.0.0.1"]),
    ])
    func cyclicOrderFollowsGlibcMergeSort(input: [String], expected: [String]) {
        #expect(savedLines(input.map { SampleTable.tcp($0, 80) }) == expected.map { "-A -t \($0):80 -s wlc" })
    }

    /// Marks compare first: a service without one has mark 0, so marked services follow it, IPv4
    /// before IPv6; protocols compare by number.
    @Test func firewallMarksFollowServices() {
        let keys: [VirtualServerKey] = [
            .firewallMark(.inet, 1), SampleTable.tcp("10.0.0.1", 80),
            .firewallMark(.inet6, 1), .service(.udp, SampleTable.address("10.0.0.1"), 80),
        ]
        #expect(savedLines(keys) == ["-A -t 10.0.0.1:80 -s wlc", "-A -u 10.0.0.1:80 -s wlc", "-A -f 1 -s wlc", "-A -f 1 -6 -s wlc"])
    }

    /// The same wrapping subtraction puts marks above 2^31 before unmarked services.
    @Test func largeFirewallMarksPrecedeServices() {
        let keys: [VirtualServerKey] = [
            SampleTable.tcp("10.0.0.1", 80), .service(.udp, SampleTable.address("10.0.0.1"), 80),
            .firewallMark(.inet, 3_000_000_000),
        ]
        #expect(savedLines(keys) == ["-A -f 3000000000 -s wlc", "-A -t 10.0.0.1:80 -s wlc", "-A -u 10.0.0.1:80 -s wlc"])
    }

    /// A mark of exactly 2^31 compares below an unmarked service both ways round, so only the
    /// merge order decides: ipvsadm keeps such pairs in input order.
    @Test(arguments: [
        ([VirtualServerKey.firewallMark(.inet, 0x8000_0000), .service(.tcp, SampleTable.address("10.0.0.1"), 80)],
         ["-A -f 2147483648 -s wlc", "-A -t 10.0.0.1:80 -s wlc"]),
        ([.service(.tcp, SampleTable.address("10.0.0.1"), 80), .firewallMark(.inet, 0x8000_0000)],
         ["-A -t 10.0.0.1:80 -s wlc", "-A -f 2147483648 -s wlc"]),
    ])
    func markOfTwoToThe31KeepsInputOrder(keys: [VirtualServerKey], expected: [String]) {
        #expect(savedLines(keys) == expected)
    }

    /// `ipvs_cmp_dests`: address word by word (IPv6 has four), then port.
    @Test func realServerOrder() {
        let reals = [
            SampleTable.real("2001:db8::1:0:0:1", 80), SampleTable.real("2001:db8::2", 80),
            SampleTable.real("2001:db8::1", 81), SampleTable.real("2001:db8::1", 80),
        ]
        let service = VirtualServer(key: SampleTable.tcp("2001:db8::", 80), scheduler: "rr")
        #expect(SaveFormat.render([(VirtualServerStatus(server: service), reals)]) == """
            -A -t [2001:db8::]:80 -s rr
            -a -t [2001:db8::]:80 -r [2001:db8::1]:80 -m -w 1
            -a -t [2001:db8::]:80 -r [2001:db8::1]:81 -m -w 1
            -a -t [2001:db8::]:80 -r [2001:db8::2]:80 -m -w 1
            -a -t [2001:db8::]:80 -r [2001:db8::1:0:0:1]:80 -m -w 1

            """)
    }

    @Test func mergeSortIsStableAndMatchesGlibcSplit() {
        // Equal keys keep their input order.
        let pairs = [(1, "a"), (0, "b"), (1, "c"), (0, "d"), (1, "e")]
        let sorted = IpvsadmOrder.mergeSorted(pairs) { Int32($0.0 - $1.0) }
        #expect(sorted.map(\.1) == ["b", "d", "a", "c", "e"])
    }
}
