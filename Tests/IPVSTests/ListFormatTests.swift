import Testing
@testable import IPVS
@testable import IPVSText

/// Golden text derived from ipvsadm 1.31 `list_all`, `print_title`, `print_service_entry` and
/// `print_largenum`. Lines are listed one per string so that trailing spaces stay visible.
@Suite struct ListFormatTests {
    let info = IPVSInfo(version: 0x01_02_01, connectionTableSize: 4096)

    private func text(_ lines: [String]) -> String {
        lines.map { $0 + "\n" }.joined()
    }

    private func counters(_ values: [UInt64], rates: Bool = false) -> Statistics {
        var s = Statistics()
        if rates {
            (s.connectionsPerSecond, s.packetsInPerSecond, s.packetsOutPerSecond, s.bytesInPerSecond, s.bytesOutPerSecond)
                = (values[0], values[1], values[2], values[3], values[4])
        } else {
            (s.connections, s.packetsIn, s.packetsOut, s.bytesIn, s.bytesOut) = (values[0], values[1], values[2], values[3], values[4])
        }
        return s
    }

    @Test func header() {
        #expect(ListFormat.header(info) == "IP Virtual Server version 1.2.1 (size=4096)")
    }

    /// `ipvsadm -L -n`.
    @Test func connections() {
        #expect(ListFormat.render(info: info, table: SampleTable.table) == text([
            "IP Virtual Server version 1.2.1 (size=4096)",
            "Prot LocalAddress:Port Scheduler Flags",
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
            "TCP  192.168.1.10:443 wlc persistent 10800",
            "  -> 192.168.1.20:443             Route   1      3          7         ",
            "  -> 192.168.1.21:443             Tunnel  3      0          0         ",
            "TCP  10.96.0.10:80 rr",
            "  -> 10.244.1.5:8080              Masq    1      12         345       ",
            "  -> 10.244.1.5:8081              Masq    2      0          0         ",
            "  -> 10.244.2.7:8080              Masq    1      4294967295 0         ",
            "TCP  10.96.0.20:0 wlc persistent 300 mask 255.255.255.0 pe sip",
            "UDP  10.96.0.10:53 rr ops",
            "  -> 10.244.1.9:53                Masq    1      0          2         ",
            "SCTP 10.96.0.30:3868 mh (mh-port)",
            "  -> 10.244.3.3:3868              Masq    0      0          0         ",
            "TCP  [2001:db8::10]:443 sh (sh-fallback,sh-port) persistent 60 mask 64",
            "  -> [2001:db8::1]:8443           Masq    1      0          0         ",
            "  -> [2001:db8::2]:443            Masq    1      0          0         ",
            "FWM  7 rr",
            "  -> 10.0.0.1:0                   Route   1      0          0         ",
            "FWM  7 IPv6 rr",
            "  -> [2001:db8::5]:0              Masq    1      0          0         ",
        ]))
    }

    @Test func emptyTableHasHeadersOnly() {
        #expect(ListFormat.render(info: info, table: []) == text([
            "IP Virtual Server version 1.2.1 (size=4096)",
            "Prot LocalAddress:Port Scheduler Flags",
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
        ]))
    }

    /// `fwd_name`: bypass has no name and glibc prints the NULL as `(null)`.
    @Test func forwardingNames() {
        #expect(ForwardingMethod.allCases.map(ListFormat.forwardingName) == ["Masq", "Local", "Tunnel", "Route", "(null)"])
    }

    /// `ipvsadm -L -n --stats`. A mark of 2^32-1 sorts first (wrapping comparison), and long IPv6
    /// names overflow their column as with printf. ipvsadm 1.31 prints marks with %d (so this one
    /// as -1); later versions, and this code, use %u.
    @Test func stats() {
        let mark = VirtualServerStatus(server: VirtualServer(key: .firewallMark(.inet6, 4_294_967_295)))
        var tcp = VirtualServerStatus(server: SampleTable.clusterIP)
        tcp.statistics = counters([12, 99_999_999, 100_000_000, 5_000_000_000, 999_999_999_999_999])
        var real = SampleTable.real("10.244.1.5", 8080)
        real.statistics = counters([0, 999_999_999, 99_999_999_999, 123_456_789_012, 100_000_000_000_000])
        var tcp6 = VirtualServerStatus(server: VirtualServer(key: SampleTable.tcp("2001:db8:1234:5678:9abc:def0:1234:5678", 443)))
        tcp6.statistics = counters([1, 2, 3, 4, 5])
        var real6 = SampleTable.real("2001:db8:1234:5678:9abc:def0:1234:5679", 8443)
        real6.statistics = counters([.max, 0, 0, 0, 0])

        let table = [(tcp, [real]), (tcp6, [real6]), (mark, [])]
        #expect(ListFormat.render(info: info, table: table, columns: .stats) == text([
            "IP Virtual Server version 1.2.1 (size=4096)",
            "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes",
            "  -> RemoteAddress:Port",
            "FWM  4294967295 IPv6                     0        0        0        0        0",
            "TCP  10.96.0.10:80                      12 99999999  100000K    5000M     999T",
            "  -> 10.244.1.5:8080                     0  999999K   99999M     123G     100T",
            "TCP  [2001:db8:1234:5678:9abc:def0:1234:5678]:443        1        2        3        4        5",
            "  -> [2001:db8:1234:5678:9abc:def0:1234:5679]:844318446744T        0        0        0        0",
        ]))
    }

    /// `print_largenum` at each boundary.
    @Test(arguments: [
        (UInt64(0), "        0"),
        (99_999_999, " 99999999"),
        (100_000_000, "  100000K"),
        (999_999_999, "  999999K"),
        (1_000_000_000, "    1000M"),
        (99_999_999_999, "   99999M"),
        (100_000_000_000, "     100G"),
        (99_999_999_999_999, "   99999G"),
        (100_000_000_000_000, "     100T"),
        (UInt64.max, "18446744T"),
    ])
    func abbreviation(number: UInt64, expected: String) {
        #expect(ListFormat.abbreviated(number) == expected)
    }

    /// `ipvsadm -L -n --rate`: the real server's first three rates are printed whole.
    @Test func rate() {
        var dns = VirtualServerStatus(server: SampleTable.dns)
        dns.statistics = counters([5, 60, 70, 8000, 123_456_789], rates: true)
        var real = SampleTable.real("10.244.1.9", 53)
        real.statistics = counters([5, 60, 123_456_789, 8000, 123_456_789], rates: true)
        #expect(ListFormat.render(info: info, table: [(dns, [real])], columns: .rate) == text([
            "IP Virtual Server version 1.2.1 (size=4096)",
            "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS",
            "  -> RemoteAddress:Port",
            "UDP  10.96.0.10:53                       5       60       70     8000  123456K",
            "  -> 10.244.1.9:53                       5       60 123456789     8000  123456K",
        ]))
    }

    /// `ipvsadm -L -n --thresholds`.
    @Test func thresholds() {
        var real = SampleTable.real("10.244.1.5", 8080, active: 3, inactive: 4)
        real.server.upperThreshold = 1000
        real.server.lowerThreshold = 750
        let table = [(VirtualServerStatus(server: SampleTable.clusterIP), [real])]
        #expect(ListFormat.render(info: info, table: table, columns: .thresholds) == text([
            "IP Virtual Server version 1.2.1 (size=4096)",
            "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn ",
            "  -> RemoteAddress:Port",
            "TCP  10.96.0.10:80 rr",
            "  -> 10.244.1.5:8080              1000       750        3          4         ",
        ]))
    }

    /// `ipvsadm -L -n --persistent-conn`.
    @Test func persistentConnections() {
        var real = SampleTable.real("10.244.1.5", 8080, weight: 2, active: 3, inactive: 4)
        real.persistentConnections = 17
        var server = SampleTable.clusterIP
        server.flags = .persistent
        server.timeout = 360
        #expect(ListFormat.render(info: info, table: [(VirtualServerStatus(server: server), [real])],
                                  columns: .persistentConnections) == text([
            "IP Virtual Server version 1.2.1 (size=4096)",
            "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn ",
            "  -> RemoteAddress:Port",
            "TCP  10.96.0.10:80 rr persistent 360",
            "  -> 10.244.1.5:8080              2         17          3          4         ",
        ]))
    }

    /// The persistence engine shows only on persistent services, unlike in `-S`.
    @Test func engineOnlyWhenPersistent() {
        let server = VirtualServer(key: SampleTable.tcp("10.0.0.1", 80), persistenceEngine: "sip")
        #expect(ListFormat.serviceLine(VirtualServerStatus(server: server), .connections) == "TCP  10.0.0.1:80 wlc")
    }
}
