import IPVS
import Testing
@testable import Proxy

private let vip = tcp("10.96.0.10", 80)
private let t0 = ContinuousClock.now

private func desired(_ entries: [(VirtualServer, [RealServer])]) -> DesiredState {
    let name = ServicePortName(namespace: "default", name: "web", port: "", protocol: .tcp)
    return DesiredState(virtualServers: Dictionary(uniqueKeysWithValues: entries.map {
        ($0.0.key, DesiredVirtualServer(server: $0.0, realServers: $0.1, service: name))
    }), addresses: Set(entries.compactMap {
        if case .service(_, let address, _) = $0.0.key { return address }
        return nil
    }))
}

private func status(_ server: VirtualServer, _ reals: [RealServerStatus]) -> (VirtualServerStatus, [RealServerStatus]) {
    (VirtualServerStatus(server: server), reals)
}

private func status(_ real: RealServer, active: UInt32 = 0, inactive: UInt32 = 0) -> RealServerStatus {
    RealServerStatus(server: real, activeConnections: active, inactiveConnections: inactive)
}

private func plan(_ want: DesiredState, _ current: [(VirtualServerStatus, [RealServerStatus])],
                  ownership: Ownership? = nil, termination: GracefulTermination = GracefulTermination(),
                  now: ContinuousClock.Instant = t0) -> Plan {
    Plan(desired: want, current: current, ownership: ownership ?? Ownership(addresses: want.addresses),
         termination: termination, now: now)
}

@Suite struct PlanTests {
    let server = VirtualServer(key: vip, scheduler: "rr")
    let a = real("10.244.0.5", 8080)
    let b = real("10.244.1.6", 8080)

    @Test func fromEmptyAddsVirtualServersBeforeTheirRealServers() {
        let other = VirtualServer(key: udp("10.96.0.53", 53), scheduler: "rr")
        let p = plan(desired([(server, [b, a]), (other, [real("10.244.0.9", 53)])]), [])
        #expect(p.description == """
            -A -t 10.96.0.10:80 -s rr
            -A -u 10.96.0.53:53 -s rr
            -a -t 10.96.0.10:80 -r 10.244.0.5:8080 -m -w 1
            -a -t 10.96.0.10:80 -r 10.244.1.6:8080 -m -w 1
            -a -u 10.96.0.53:53 -r 10.244.0.9:53 -m -w 1
            """)
    }

    @Test func unchangedStateGivesNoOperations() {
        var kernelView = server
        kernelView.flags = .hashed  // The kernel reports HASHED; it is not a difference.
        let p = plan(desired([(server, [a, b])]), [status(kernelView, [status(a, active: 3), status(b)])])
        #expect(p.operations.isEmpty)
        #expect(p.termination.drainingSince.isEmpty)
    }

    @Test(arguments: [
        VirtualServer(key: vip, scheduler: "wrr"),
        VirtualServer(key: vip, scheduler: "rr", flags: .persistent, timeout: 10800),
        VirtualServer(key: vip, scheduler: "rr", netmask: 0xffff_ff00),
        VirtualServer(key: vip, scheduler: "rr", flags: .schedulerPort),
        VirtualServer(key: vip, scheduler: "rr", persistenceEngine: "sip"),
    ])
    func virtualServerDifferenceIsAnUpdate(_ current: VirtualServer) {
        let p = plan(desired([(server, [a])]), [status(current, [status(a)])])
        #expect(p.operations == [.updateVirtualServer(server)])
    }

    @Test(arguments: [
        RealServer(key: RealServerKey(address: ip("10.244.0.5"), port: 8080), weight: 5),
        RealServer(key: RealServerKey(address: ip("10.244.0.5"), port: 8080), forwarding: .directRoute),
        RealServer(key: RealServerKey(address: ip("10.244.0.5"), port: 8080), upperThreshold: 100),
        RealServer(key: RealServerKey(address: ip("10.244.0.5"), port: 8080), weight: 1),
    ])
    func realServerDifferenceIsAnUpdate(_ current: RealServer) {
        let p = plan(desired([(server, [a])]), [status(server, [status(current)])])
        #expect(p.operations == (current == a ? [] : [.updateRealServer(vip, a)]))
    }

    @Test func operationsComeInSafeOrder() {
        let stale = VirtualServer(key: tcp("10.96.0.99", 80), scheduler: "rr")
        let added = VirtualServer(key: tcp("10.96.0.20", 80), scheduler: "rr")
        let changed = VirtualServer(key: vip, scheduler: "lc")
        let want = desired([(changed, [a]), (added, [b])])
        let ownership = Ownership(addresses: want.addresses.union([ip("10.96.0.99")]))
        let leaving = real("10.244.9.9", 8080)
        let p = plan(want, [status(server, [status(b), status(leaving, active: 1)]), status(stale, [status(a)])],
                     ownership: ownership)
        #expect(p.description == """
            -E -t 10.96.0.10:80 -s lc
            -A -t 10.96.0.20:80 -s rr
            -a -t 10.96.0.10:80 -r 10.244.0.5:8080 -m -w 1
            -e -t 10.96.0.10:80 -r 10.244.9.9:8080 -m -w 0
            -a -t 10.96.0.20:80 -r 10.244.1.6:8080 -m -w 1
            -d -t 10.96.0.10:80 -r 10.244.1.6:8080
            -D -t 10.96.0.99:80
            """)
    }

    @Test func deletesGoAfterAddsAndRealServersBeforeVirtualServers() {
        let dns = VirtualServer(key: udp("10.96.0.53", 53), scheduler: "rr")
        let gone = VirtualServer(key: udp("10.96.0.54", 53), scheduler: "rr")
        let want = desired([(dns, [real("10.244.0.9", 53)])])
        let p = plan(want, [status(dns, [status(real("10.244.0.8", 53))]), status(gone, [])],
                     ownership: Ownership(addresses: [ip("10.96.0.53"), ip("10.96.0.54")]))
        #expect(p.operations == [
            .addRealServer(dns.key, real("10.244.0.9", 53)),
            .deleteRealServer(dns.key, rkey("10.244.0.8", 53)),
            .deleteVirtualServer(gone.key),
        ])
    }

    // MARK: Ownership

    @Test func foreignVirtualServersAreNeverTouched() {
        let foreign = VirtualServer(key: tcp("172.16.0.1", 443), scheduler: "wlc")
        let p = plan(desired([(server, [a])]), [status(server, [status(a)]), status(foreign, [status(b)])])
        #expect(p.operations.isEmpty)
    }

    @Test(arguments: [
        (tcp("10.96.0.99", 80), true),  // a VIP still bound on the dummy interface
        (tcp("192.168.1.10", 30080), true),  // a node port
        (tcp("192.168.1.10", 22), false),  // a node address outside the node-port range
        (tcp("192.168.1.11", 30080), false),  // not a node-port address
        (udp("10.96.0.99", 53), true),
        (tcp("10.200.0.1", 80), false),  // bound, but excluded
        (VirtualServerKey.firewallMark(.inet, 7), false),
    ])
    func ownership(_ key: VirtualServerKey, _ owned: Bool) {
        let ownership = Ownership(node: NodeConfig(nodeName: "n", nodePortAddresses: [ip("192.168.1.10")],
                                                   excludeCIDRs: [CIDR("10.200.0.0/16")!]),
                                  desired: DesiredState(), boundAddresses: [ip("10.96.0.99"), ip("10.200.0.1")])
        #expect(ownership.owns(key) == owned)
        let p = plan(DesiredState(), [status(VirtualServer(key: key), [])], ownership: ownership)
        #expect(p.operations == (owned ? [.deleteVirtualServer(key)] : []))
    }

    @Test func desiredVirtualServersAreManagedEvenInsideAnExcludedRange() {
        let ownership = Ownership(addresses: [], excludeCIDRs: [CIDR("10.96.0.0/16")!])
        let p = plan(desired([(server, [a])]), [status(server, [])], ownership: ownership)
        #expect(p.operations == [.addRealServer(vip, a)])
    }

    // MARK: Graceful termination

    @Test func removedTCPRealServerIsDrainedThenDeletedWhenIdle() {
        let want = desired([(server, [a])])
        let drained = real("10.244.1.6", 8080, weight: 0)
        let key = GracefulTermination.Key(virtualServer: vip, realServer: b.key)

        let first = plan(want, [status(server, [status(a), status(b, active: 2)])])
        #expect(first.operations == [.updateRealServer(vip, drained)])
        #expect(first.termination.drainingSince == [key: t0])

        let busy = plan(want, [status(server, [status(a), status(drained, active: 1, inactive: 4)])],
                        termination: first.termination, now: t0 + .seconds(60))
        #expect(busy.operations.isEmpty)
        #expect(busy.termination.drainingSince == [key: t0])

        let idle = plan(want, [status(server, [status(a), status(drained)])],
                        termination: busy.termination, now: t0 + .seconds(120))
        #expect(idle.operations == [.deleteRealServer(vip, b.key)])
        #expect(idle.termination.drainingSince.isEmpty)
    }

    @Test func removedTCPRealServerWithoutConnectionsIsDeletedAtOnce() {
        let p = plan(desired([(server, [a])]), [status(server, [status(a, active: 4), status(b)])])
        #expect(p.operations == [.deleteRealServer(vip, b.key)])
        #expect(p.termination.drainingSince.isEmpty)
    }

    @Test(arguments: [(UInt32(1), UInt32(0)), (0, 1), (UInt32.max, UInt32.max)])
    func activeAndInactiveConnectionsBothHoldARealServer(_ active: UInt32, _ inactive: UInt32) {
        let p = plan(desired([(server, [a])]), [status(server, [status(a), status(b, active: active, inactive: inactive)])])
        #expect(p.operations == [.updateRealServer(vip, real("10.244.1.6", 8080, weight: 0))])
    }

    @Test func aDrainedServerWhoseConnectionsEndedBeforeTheNextPlanIsDeleted() {
        // Weight 0 in the kernel, idle, nothing remembered (after a restart, say).
        let p = plan(desired([(server, [a])]), [status(server, [status(a), status(real("10.244.1.6", 8080, weight: 0))])])
        #expect(p.operations == [.deleteRealServer(vip, b.key)])
    }

    @Test func drainingEndsAfterTheGracePeriod() {
        let want = desired([(server, [a])])
        let drained = real("10.244.1.6", 8080, weight: 0)
        var termination = GracefulTermination(gracePeriod: .seconds(600))
        termination = plan(want, [status(server, [status(a), status(b, active: 9)])], termination: termination).termination
        let current = [status(server, [status(a), status(drained, active: 9)])]

        #expect(plan(want, current, termination: termination, now: t0 + .seconds(599)).operations.isEmpty)
        #expect(plan(want, current, termination: termination, now: t0 + .seconds(600)).operations
                == [.deleteRealServer(vip, b.key)])
    }

    @Test func aDrainedServerWithoutBookkeepingStartsItsGracePeriodNow() {
        // After a restart: weight 0 in the kernel, nothing remembered.
        let want = desired([(server, [a])])
        let current = [status(server, [status(a), status(real("10.244.1.6", 8080, weight: 0), active: 1)])]
        let p = plan(want, current, now: t0 + .seconds(5000))
        #expect(p.operations.isEmpty)
        #expect(p.termination.drainingSince.values.map { $0 } == [t0 + .seconds(5000)])
    }

    @Test func udpAndSCTPRealServersAreDeletedAtOnce() {
        for key in [udp("10.96.0.10", 53), VirtualServerKey.service(.sctp, ip("10.96.0.10"), 3868)] {
            let server = VirtualServer(key: key, scheduler: "rr")
            let p = plan(desired([(server, [])]), [status(server, [status(a, active: 5)])])
            #expect(p.operations == [.deleteRealServer(key, a.key)])
            #expect(p.termination.drainingSince.isEmpty)
        }
    }

    @Test func aDrainingServerWantedAgainIsRestored() {
        let want = desired([(server, [a, b])])
        var termination = GracefulTermination()
        termination = plan(desired([(server, [a])]), [status(server, [status(a), status(b, active: 1)])],
                           termination: termination).termination
        let p = plan(want, [status(server, [status(a), status(real("10.244.1.6", 8080, weight: 0), active: 1)])],
                     termination: termination, now: t0 + .seconds(30))
        #expect(p.operations == [.updateRealServer(vip, b)])
        #expect(p.termination.drainingSince.isEmpty)
    }

    @Test func deletingAVirtualServerDeletesItsRealServersWithIt() {
        let termination = plan(desired([(server, [a])]), [status(server, [status(a), status(b, active: 1)])]).termination
        let p = plan(DesiredState(), [status(server, [status(a), status(real("10.244.1.6", 8080, weight: 0), active: 1)])],
                     ownership: Ownership(addresses: [ip("10.96.0.10")]), termination: termination)
        #expect(p.operations == [.deleteVirtualServer(vip)])
        #expect(p.termination.drainingSince.isEmpty)
    }

    @Test func gracePeriodIsCarriedForward() {
        let p = plan(DesiredState(), [], termination: GracefulTermination(gracePeriod: .seconds(42)))
        #expect(p.termination.gracePeriod == .seconds(42))
    }
}

@Suite struct NodeConfigTests {
    @Test(arguments: [
        ("10.0.0.0/8", "10.255.1.2", true), ("10.0.0.0/8", "11.0.0.1", false),
        ("10.1.2.3/16", "10.1.99.1", true), ("192.168.1.0/25", "192.168.1.128", false),
        ("0.0.0.0/0", "8.8.8.8", true), ("0.0.0.0/0", "::1", false),
        ("fd00::/64", "fd00::1234", true), ("fd00::/64", "fd00:0:0:1::1", false),
        ("fd00::1/128", "fd00::1", true),
    ])
    func cidrContains(_ cidr: String, _ address: String, _ expected: Bool) throws {
        #expect(try #require(CIDR(cidr)).contains(ip(address)) == expected)
    }

    @Test func cidrParsing() {
        #expect(CIDR("10.1.2.3/16")?.description == "10.1.0.0/16")
        #expect(CIDR("10.0.0.0/33") == nil)
        #expect(CIDR("10.0.0.0") == nil)
        #expect(CIDR("fd00::/129") == nil)
        #expect(CIDR("x/8") == nil)
    }

    @Test func portRange() {
        #expect(NodeConfig.parsePortRange("30000-32767") == 30000...32767)
        #expect(NodeConfig.parsePortRange("8080") == 8080...8080)
        #expect(NodeConfig.parsePortRange("32767-30000") == nil)
        #expect(NodeConfig.parsePortRange("0-10") == nil)
        #expect(NodeConfig.parsePortRange("1-70000") == nil)
    }

    @Test func defaultsAndProblems() {
        let node = NodeConfig(nodeName: "n")
        #expect(node.scheduler == .roundRobin)
        #expect(node.dummyInterface == "kipvs0")
        #expect(node.nodePortRange == 30000...32767)
        #expect(node.problems.isEmpty)
        #expect(NodeConfig(nodeName: "", dummyInterface: "a-very-long-name0").problems.count == 2)
    }

    @Test func schedulerNames() {
        #expect(IPVSScheduler.allCases.map(\.rawValue) == [
            "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos",
        ])
        #expect(Set(IPVSScheduler.allCases.map(\.rawValue)) == FakeIPVS.schedulers)
    }
}
