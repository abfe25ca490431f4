import Foundation
import IPVS
import Testing
@testable import Proxy

@Suite struct KubeProxyConfigurationTests {
    static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/kube-proxy")

    static func fixture(_ name: String) throws -> String {
        try String(contentsOf: fixtures.appendingPathComponent(name), encoding: .utf8)
    }

    static func parse(_ body: String) throws(ConfigurationError) -> KubeProxyConfiguration {
        try KubeProxyConfiguration.parse("""
            apiVersion: kubeproxy.config.k8s.io/v1alpha1
            kind: KubeProxyConfiguration
            \(body)
            """)
    }

    /// The error reading `text` gives; nil when it reads.
    static func failure(_ text: String) -> ConfigurationError? {
        do {
            _ = try KubeProxyConfiguration.parse(text)
            return nil
        } catch {
            return error
        }
    }

    // MARK: kube-proxy's own files

    /// What `kube-proxy --write-config-to` prints: every field kube-proxy has, at its default.
    @Test func kubeProxyDefaultsParse() throws {
        let text = try Self.fixture("write-config-to.yaml")
        let config = try KubeProxyConfiguration.parse(text)
        var expected = KubeProxyConfiguration()
        expected.minSyncPeriod = .zero
        expected.tcpTimeout = .zero
        expected.tcpFinTimeout = .zero
        expected.udpTimeout = .zero
        expected.masqueradeAll = false
        expected.healthzBindAddress = "0.0.0.0:10256"
        expected.metricsBindAddress = "127.0.0.1:10249"
        expected.ignored = ["conntrack.maxPerCore, conntrack.min, conntrack.tcpCloseWaitTimeout, conntrack.tcpEstablishedTimeout: "
                            + "kipvs sets only the conntrack settings IPVS needs"]
        #expect(config == expected)
        #expect(config.ipvsTimeouts == Timeouts(tcp: 0, tcpFin: 0, udp: 0))
        // The same file as JSON reads the same.
        #expect(try KubeProxyConfiguration.parse(Self.fixture("write-config-to.json")) == config)
    }

    /// kubeadm's ConfigMap leaves every defaulted value zero, empty or null: kube-proxy's defaults apply.
    @Test func kubeadmConfigMapParses() throws {
        let config = try KubeProxyConfiguration.parse(Self.fixture("kubeadm-ipvs.yaml"))
        #expect(config.kubeconfig == "/var/lib/kube-proxy/kubeconfig.conf")
        #expect(config.clusterCIDRs == [CIDR("10.244.0.0/16")!])
        #expect(config.syncPeriod == nil)
        #expect(config.minSyncPeriod == .zero)
        #expect(config.healthzBindAddress == nil)
        #expect(config.metricsBindAddress == nil)
        #expect(config.scheduler == nil)
        #expect(config.nodePortAddresses == nil)
        #expect(config.ignored.isEmpty)
    }

    @Test func everyFieldKipvsReads() throws {
        let config = try Self.parse("""
            clientConnection: {kubeconfig: /etc/kipvs/kubeconfig}
            hostnameOverride: node-7
            healthzBindAddress: 127.0.0.1
            metricsBindAddress: "[::1]:9999"
            mode: ipvs
            ipvs:
              scheduler: lc
              syncPeriod: 1m0s
              minSyncPeriod: 500ms
              excludeCIDRs: [10.1.0.0/16, "fd00::/64"]
              tcpTimeout: 15m0s
              tcpFinTimeout: 2m
              udpTimeout: 5m0s
              strictARP: true
            nodePortAddresses: [192.168.1.0/24]
            clusterCIDR: 10.244.0.0/16,fd00:10:244::/56
            detectLocalMode: InterfaceNamePrefix
            detectLocal: {interfaceNamePrefix: veth, bridgeInterface: cni0}
            iptables: {masqueradeAll: true}
            conntrack: {udpTimeout: 30s}
            """)
        #expect(config.kubeconfig == "/etc/kipvs/kubeconfig")
        #expect(config.hostnameOverride == "node-7")
        #expect(config.healthzBindAddress == "127.0.0.1:10256")
        #expect(config.metricsBindAddress == "[::1]:9999")
        #expect(config.scheduler == .leastConnection)
        #expect(config.syncPeriod == .seconds(60))
        #expect(config.minSyncPeriod == .milliseconds(500))
        #expect(config.excludeCIDRs == [CIDR("10.1.0.0/16")!, CIDR("fd00::/64")!])
        #expect(config.ipvsTimeouts == Timeouts(tcp: 900, tcpFin: 120, udp: 300))
        #expect(config.nodePortAddresses == .cidrs([CIDR("192.168.1.0/24")!]))
        #expect(config.clusterCIDRs == [CIDR("10.244.0.0/16")!, CIDR("fd00:10:244::/56")!])
        #expect(config.detectLocalMode == .interfaceNamePrefix)
        #expect(config.interfaceNamePrefixes == ["veth"])
        #expect(config.bridgeInterface == "cni0")
        #expect(config.masqueradeAll == true)
        #expect(config.ignored == ["conntrack.udpTimeout: kipvs sets only the conntrack settings IPVS needs",
                                   "ipvs.strictARP: kipvs leaves arp_ignore and arp_announce as they are"])
    }

    @Test func primaryNodePortAddresses() throws {
        #expect(try Self.parse("nodePortAddresses: [primary]").nodePortAddresses == .primary)
        #expect(KubeProxyConfiguration.parseNodePortAddresses(["primary"]) == .success(.primary))
        #expect(KubeProxyConfiguration.parseNodePortAddresses([" "]) == .success(nil))
    }

    // MARK: Flags over the file

    @Test func flagsWinOverTheFile() throws {
        let file = try Self.parse("""
            hostnameOverride: from-file
            ipvs: {scheduler: lc, syncPeriod: 10s, excludeCIDRs: [10.1.0.0/16], tcpTimeout: 100s}
            iptables: {masqueradeAll: true}
            conntrack: {min: 5}
            """)
        var flags = KubeProxyConfiguration()
        flags.scheduler = .sourceHashing
        flags.excludeCIDRs = []
        flags.masqueradeAll = false
        flags.healthzBindAddress = ""
        let merged = flags.overriding(file)
        #expect(merged.scheduler == .sourceHashing)
        #expect(merged.excludeCIDRs == [])
        #expect(merged.masqueradeAll == false)
        // An empty flag is a value given: it turns the endpoint off.
        #expect(merged.healthzBindAddress == "")
        // What the flags leave alone comes from the file.
        #expect(merged.hostnameOverride == "from-file")
        #expect(merged.syncPeriod == .seconds(10))
        #expect(merged.ipvsTimeouts == Timeouts(tcp: 100, tcpFin: 0, udp: 0))
        #expect(merged.ignored == file.ignored)
        // What neither sets is nil: the caller's default applies.
        #expect(merged.minSyncPeriod == nil)
        #expect(merged.metricsBindAddress == nil)
    }

    @Test func noFileLeavesTheFlags() {
        var flags = KubeProxyConfiguration()
        flags.tcpFinTimeout = .seconds(30)
        flags.nodePortAddresses = .primary
        #expect(flags.overriding(KubeProxyConfiguration()) == flags)
    }

    // MARK: Errors name the field

    @Test(arguments: [
        ("ipvs:\n  syncPeriod: 3x", #"ipvs.syncPeriod: "3x" is not a duration (e.g. 30s, 1m0s, 500ms)"#),
        ("ipvs:\n  tcpTimeout: -5s", #"ipvs.tcpTimeout: "-5s" is not a duration (e.g. 30s, 1m0s, 500ms)"#),
        ("ipvs:\n  minSyncPeriod: 30", #"ipvs.minSyncPeriod: expected a string, got 30"#),
        ("ipvs:\n  sched: rr", "ipvs.sched: unknown field"),
        ("proxyMode: ipvs", "proxyMode: unknown field"),
        ("conntrack:\n  max: 0", "conntrack.max: unknown field"),
        ("ipvs:\n  scheduler: fastest", #"ipvs.scheduler: "fastest" is not an IPVS scheduler (rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos)"#),
        ("ipvs:\n  excludeCIDRs: [10.0.0.0/8, 10.300.0.0/16]", #"ipvs.excludeCIDRs[1]: "10.300.0.0/16" is not a CIDR"#),
        ("ipvs:\n  excludeCIDRs: 10.0.0.0/8", "ipvs.excludeCIDRs: expected a list"),
        ("ipvs: rr", "ipvs: expected an object"),
        ("mode: iptables", #"mode: "iptables": kipvs is an IPVS proxy; use ipvs or leave it empty"#),
        ("mode: nftables", #"mode: "nftables": kipvs is an IPVS proxy; use ipvs or leave it empty"#),
        ("detectLocalMode: NodeCIDR", #"detectLocalMode: "NodeCIDR": kipvs does not read the Node object's podCIDRs; use one of ClusterCIDR, InterfaceNamePrefix, BridgeInterface"#),
        ("detectLocalMode: Pods", #"detectLocalMode: "Pods": expected one of ClusterCIDR, InterfaceNamePrefix, BridgeInterface"#),
        ("clusterCIDR: 10.244.0.0/16,pods", #"clusterCIDR: "pods" is not a CIDR"#),
        ("nodePortAddresses: [primary, 10.0.0.0/8]", "nodePortAddresses: primary cannot be combined with CIDRs"),
        ("nodePortAddresses: [eth0]", "nodePortAddresses: not a CIDR: eth0"),
        ("iptables:\n  masqueradeAll: yes please", #"iptables.masqueradeAll: expected true or false, got "yes please""#),
        ("hostnameOverride: 12345", "hostnameOverride: expected a string, got 12345"),
        ("hostnameOverride: a\nhostnameOverride: b", "hostnameOverride: repeated field"),
    ])
    func errorNamesTheField(_ body: String, _ message: String) {
        let text = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n\(body)"
        #expect(Self.failure(text)?.description == message)
    }

    @Test(arguments: [
        ("", "the file is empty"),
        ("kind: KubeProxyConfiguration", "apiVersion: missing; expected kubeproxy.config.k8s.io/v1alpha1"),
        ("apiVersion: kubeproxy.config.k8s.io/v1alpha2\nkind: KubeProxyConfiguration",
         #"apiVersion: expected kubeproxy.config.k8s.io/v1alpha1, got "kubeproxy.config.k8s.io/v1alpha2""#),
        ("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeletConfiguration",
         #"kind: expected KubeProxyConfiguration, got "KubeletConfiguration""#),
        ("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n---\nkind: Other",
         "expected one KubeProxyConfiguration, found several documents"),
        ("- a\n- b", "expected an object"),
    ])
    func errorInTheWholeFile(_ text: String, _ message: String) {
        #expect(Self.failure(text)?.description == message)
    }

    @Test func notYAMLAtAll() throws {
        let error = try #require(Self.failure("{\"apiVersion\": "))
        #expect(error.path == "")
        #expect(error.message.hasPrefix("not YAML or JSON: "))
    }

    // MARK: Values

    @Test(arguments: [
        ("0", Duration.zero), ("0s", .zero), ("30s", .seconds(30)), ("1h0m0s", .seconds(3600)),
        ("15m0s", .seconds(900)), ("24h0m0s", .seconds(86400)), ("250ms", .milliseconds(250)),
        ("1.5m", .seconds(90)), ("1m30s", .seconds(90)), ("+2s", .seconds(2)), ("100us", .microseconds(100)),
        ("1µs", .microseconds(1)), ("7ns", .nanoseconds(7)),
    ])
    func goDurations(_ text: String, _ expected: Duration) {
        #expect(KubeProxyConfiguration.parseGoDuration(text) == expected)
    }

    @Test(arguments: ["", "3x", "1", "s", "-1s", "1..5s", ".s", "1s2", "1 s", "9000h"])
    func notGoDurations(_ text: String) {
        #expect(KubeProxyConfiguration.parseGoDuration(text) == nil)
    }

    @Test func timeoutsAreWholeSeconds() {
        var config = KubeProxyConfiguration()
        config.tcpTimeout = .milliseconds(100_900)
        config.udpTimeout = .milliseconds(500)
        #expect(config.ipvsTimeouts == Timeouts(tcp: 100, tcpFin: 0, udp: 0))
    }
}

@Suite struct DefaultRoutesTests {
    @Test func ipv4LowestMetricWins() {
        let table = """
            Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
            wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
            eth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0
            eth0\t0000000A\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
            docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
            """
        #expect(DefaultRoutes.ipv4Interface(procNetRoute: table) == "eth0")
    }

    @Test func ipv4WithoutDefaultRoute() {
        let table = """
            Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
            eth0\t0000000A\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
            """
        #expect(DefaultRoutes.ipv4Interface(procNetRoute: table) == nil)
        #expect(DefaultRoutes.ipv4Interface(procNetRoute: "") == nil)
    }

    @Test func ipv6SkipsTheUnreachableLoopbackEntry() {
        let table = """
            fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
            00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth1
            00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000002 00000064 00000001 00000000 00000003     eth0
            00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
            """
        #expect(DefaultRoutes.ipv6Interface(procNetIPv6Route: table) == "eth0")
        #expect(DefaultRoutes.ipv6Interface(procNetIPv6Route: String(table.split(separator: "\n")[3])) == nil)
    }
}
