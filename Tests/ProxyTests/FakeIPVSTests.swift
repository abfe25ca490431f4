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

    @Test func answersWithTheKernelsErrors() {
        let fake = FakeIPVS()
        let missing = tcp("10.96.0.99", 80)
        let result = kinds(fake, [
            .addVirtualServer(VirtualServer(key: vip, scheduler: "rr")),
            .addVirtualServer(VirtualServer(key: vip, scheduler: "rr")),
            .addVirtualServer(VirtualServer(key: tcp("10.96.0.11", 80), scheduler: "fastest")),
            .updateVirtualServer(VirtualServer(key: vip, scheduler: "fastest")),
            .updateVirtualServer(VirtualServer(key: missing, scheduler: "rr")),
            .deleteVirtualServer(missing),
            .addRealServer(missing, a),
            .updateRealServer(missing, a),
            .deleteRealServer(missing, a.key),
            .addRealServer(vip, a),
            .addRealServer(vip, a),
            .updateRealServer(vip, real("10.244.0.6", 8080)),
            .deleteRealServer(vip, rkey("10.244.0.6", 8080)),
            .addRealServer(vip, real("10.244.0.7", 8080, weight: -1)),
            .addRealServer(vip, real("fd00::7", 8080)),
            .addRealServer(vip, RealServer(key: a.key, upperThreshold: 5, lowerThreshold: 10)),
            .addVirtualServer(VirtualServer(key: tcp("10.96.0.12", 80), scheduler: "rr", persistenceEngine: "xyz")),
            .addVirtualServer(VirtualServer(key: tcp("fd00::12", 80), scheduler: "rr", netmask: 129)),
        ])
        #expect(result == [
            nil, .alreadyExists, .unknownScheduler, .unknownScheduler,
            .noSuchVirtualServer, .noSuchVirtualServer, .noSuchVirtualServer, .noSuchVirtualServer, .noSuchVirtualServer,
            nil, .alreadyExists, .noSuchRealServer, .noSuchRealServer, .outOfRange, .invalid,
            .outOfRange, .unknownScheduler, .invalid,
        ])
        #expect(fake.writeCount == 18)
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

    @Test func keepsInsertionOrder() {
        let fake = FakeIPVS()
        let keys = [tcp("10.96.0.30", 80), tcp("10.96.0.10", 80), udp("10.96.0.20", 53)]
        _ = fake.apply(keys.map { .addVirtualServer(VirtualServer(key: $0, scheduler: "rr")) })
        _ = fake.apply([.addRealServer(keys[0], real("10.0.0.9", 1)), .addRealServer(keys[0], real("10.0.0.1", 1)),
                        .updateVirtualServer(VirtualServer(key: keys[0], scheduler: "lc")),
                        .updateRealServer(keys[0], real("10.0.0.9", 1, weight: 0))])
        #expect(fake.virtualServers().map(\.server.key) == keys)
        #expect(fake.virtualServers().first?.server.scheduler == "lc")
        #expect(fake.realServers(of: keys[0]).map(\.server) == [real("10.0.0.9", 1, weight: 0), real("10.0.0.1", 1)])
    }

    @Test func deletingAVirtualServerTakesItsRealServers() {
        let fake = FakeIPVS()
        _ = fake.apply([.addVirtualServer(VirtualServer(key: vip, scheduler: "rr")), .addRealServer(vip, a)])
        _ = fake.apply([.deleteVirtualServer(vip), .addVirtualServer(VirtualServer(key: vip, scheduler: "rr"))])
        #expect(fake.realServers(of: vip).isEmpty)
    }

    @Test func listingRealServersOfAMissingServiceIsEmpty() {
        #expect(FakeIPVS().realServers(of: vip).isEmpty)
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

    @Test func flushAndSettings() throws {
        let fake = FakeIPVS()
        try fake.applyAll([.addVirtualServer(VirtualServer(key: vip, scheduler: "rr"))])
        fake.flush()
        #expect(fake.virtualServers().isEmpty)
        fake.setTimeouts(Timeouts(tcp: 0, tcpFin: 30, udp: 0))
        #expect(fake.timeouts() == Timeouts(tcp: 900, tcpFin: 30, udp: 300))
        #expect(fake.info().versionString == "1.2.1")
    }
}
