import IPVS
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct FakeIPVSTests {
    let vip = tcp("10.96.0.10", 80)
    let a = real("10.244.0.5", 8080)

    func kinds(_ handle: FakeIPVS, _ operations: [IPVSOperation]) -> [IPVSError.Kind?] {
        let failures = handle.apply(operations)
        return operations.indices.map { failures[$0]?.kind }
    }

    /// What the fake answers is held to the kernel's by IPVSTestKit's contract (IPVSTests, and
    /// KernelTests in a guest); here, that its refusals are classified as the kernel handle's are.
    @Test func classifiesRefusalsAsTheKernelHandleDoes() {
        let fake = FakeIPVS()
        let missing = tcp("10.96.0.99", 80)
        let result = kinds(fake, [
            .addVirtualServer(VirtualServer(key: vip, scheduler: "rr")),
            .addVirtualServer(VirtualServer(key: vip, scheduler: "rr")),
            .addVirtualServer(VirtualServer(key: tcp("10.96.0.11", 80), scheduler: "fastest")),
            .updateVirtualServer(VirtualServer(key: missing, scheduler: "rr")),
            .addRealServer(vip, a),
            .deleteRealServer(vip, rkey("10.244.0.6", 8080)),
            .addRealServer(vip, real("10.244.0.7", 8080, weight: -1)),
            .addRealServer(vip, real("fd00::7", 8080)),
            .addVirtualServer(VirtualServer(key: tcp("10.96.0.12", 80), scheduler: "rr", persistenceEngine: "xyz")),
        ])
        #expect(result == [
            nil, .alreadyExists, .unknownScheduler, .noSuchVirtualServer, nil, .noSuchRealServer, .outOfRange, .invalid,
            .unknownScheduler,
        ])
        #expect(fake.writeCount == 9)
        #expect(fake.applied.count == 2)
    }

    @Test func errorsCarryErrnoAndOperation() throws {
        let fake = FakeIPVS()
        let failures = fake.apply([.deleteVirtualServer(vip)])
        let error = try #require(failures[0])
        #expect(error.errno == .noSuchProcess)
        #expect(error.underlying.operation == "delete virtual server TCP 10.96.0.10:80")
        #expect(error.description == "delete virtual server TCP 10.96.0.10:80: no such virtual server (ESRCH)")
    }

    /// Address virtual servers before firewall marks, each in insertion order; real servers newest
    /// first, an updated one in its place.
    @Test func listsInTheKernelsOrder() {
        let fake = FakeIPVS()
        let keys = [VirtualServerKey.firewallMark(.inet, 5), tcp("10.96.0.30", 80), tcp("10.96.0.10", 80), udp("10.96.0.20", 53)]
        _ = fake.apply(keys.map { .addVirtualServer(VirtualServer(key: $0, scheduler: "rr")) })
        _ = fake.apply([.addRealServer(keys[1], real("10.0.0.9", 1)), .addRealServer(keys[1], real("10.0.0.1", 1)),
                        .addRealServer(keys[1], real("10.0.0.5", 1)),
                        .updateVirtualServer(VirtualServer(key: keys[1], scheduler: "lc")),
                        .updateRealServer(keys[1], real("10.0.0.1", 1, weight: 0))])
        #expect(fake.virtualServers().map(\.server.key) == [keys[1], keys[2], keys[3], keys[0]])
        #expect(fake.virtualServers().first?.server.scheduler == "lc")
        #expect(fake.realServers(of: keys[1]).map(\.server) == [real("10.0.0.5", 1), real("10.0.0.1", 1, weight: 0), real("10.0.0.9", 1)])
        #expect(fake.realServerReads == [keys[1]])
    }

    @Test func connectionCountsAndInjectedFailures() {
        let fake = FakeIPVS()
        _ = fake.apply([.addVirtualServer(VirtualServer(key: vip, scheduler: "rr")), .addRealServer(vip, a)])
        fake.setConnections(active: 3, inactive: 4, of: a.key, in: vip)
        #expect(fake.realServers(of: vip).map(\.activeConnections) == [3])
        #expect(fake.realServers(of: vip).map(\.inactiveConnections) == [4])

        fake.failure = { if case .deleteRealServer = $0 { .notPermitted } else { nil } }
        let failures = fake.apply([.deleteRealServer(vip, a.key), .updateRealServer(vip, real("10.244.0.5", 8080, weight: 2))])
        #expect(failures.mapValues(\.kind) == [0: .permissionDenied])
        #expect(fake.realServers(of: vip).map(\.server.weight) == [2])
    }

    @Test func startsWithTheKernelsDefaultTimeouts() {
        #expect(FakeIPVS().timeouts() == Timeouts(tcp: 900, tcpFin: 120, udp: 300))
    }
}
