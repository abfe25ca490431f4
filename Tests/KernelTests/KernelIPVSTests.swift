import Foundation
import IPVS
import IPVSTestKit
import Netlink
import Testing

@Suite(.serialized, .enabled(if: Kernel.hasIPVS, "needs a kernel with IPVS, as root"))
struct KernelIPVSTests {
    let web = VirtualServerKey.service(.tcp, .v("10.96.0.10"), 80)

    /// The cases FakeIPVS is held to on the host (IPVSTests), here against the kernel itself.
    @Test(arguments: IPVSContract.cases)
    func kernelKeepsTheContract(_ contractCase: IPVSContractCase) throws {
        try contractCase.run(on: Kernel.clean())
    }

    @Test func addVirtualAndRealServersAsIpvsadmSeesThem() throws {
        let ipvs = try Kernel.clean()
        try ipvs.applyAll([
            .addVirtualServer(VirtualServer(key: web, scheduler: "rr")),
            .addRealServer(web, RealServer(address: .v("10.244.1.5"), port: 8080, forwarding: .masquerade, weight: 1)),
            .addRealServer(web, RealServer(address: .v("10.244.1.6"), port: 8080, forwarding: .masquerade, weight: 3)),
        ])
        #expect(try Kernel.ipvsadmSave() == [
            "-A -t 10.96.0.10:80 -s rr",
            "-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1",
            "-a -t 10.96.0.10:80 -r 10.244.1.6:8080 -m -w 3",
        ])
    }

    @Test func updateAndDeleteEachKind() throws {
        let ipvs = try Kernel.clean()
        let real = RealServer(address: .v("10.244.1.5"), port: 8080)
        try ipvs.applyAll([.addVirtualServer(VirtualServer(key: web, scheduler: "rr")), .addRealServer(web, real)])
        var changed = real
        changed.weight = 0
        changed.forwarding = .directRoute
        try ipvs.applyAll([
            .updateVirtualServer(VirtualServer(key: web, scheduler: "lc", flags: .persistent, timeout: 600)),
            .updateRealServer(web, changed),
        ])
        #expect(try Kernel.ipvsadmSave() == [
            "-A -t 10.96.0.10:80 -s lc -p 600",
            "-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -g -w 0",
        ])
        try ipvs.applyAll([.deleteRealServer(web, real.key)])
        #expect(try Kernel.ipvsadmSave() == ["-A -t 10.96.0.10:80 -s lc -p 600"])
        try ipvs.applyAll([.deleteVirtualServer(web)])
        #expect(try Kernel.ipvsadmSave() == [])
    }

    /// What kipvs writes, it reads back equal; what ipvsadm writes, kipvs reads as ipvsadm meant it.
    @Test func readBackEqualsWhatWasWritten() throws {
        let ipvs = try Kernel.clean()
        let servers = [
            VirtualServer(key: web, scheduler: "sh", flags: [.persistent, .schedulerFallback, .schedulerPort], timeout: 10800),
            VirtualServer(key: .service(.udp, .v("10.96.0.53"), 53), scheduler: "rr", flags: .onePacket),
            VirtualServer(key: .service(.sctp, .v("10.96.0.99"), 3868), scheduler: "wlc", flags: .persistent, timeout: 60,
                          netmask: 0xffff_ff00),
            VirtualServer(key: .service(.tcp, .v("fd00::10"), 443), scheduler: "lc", flags: .persistent, timeout: 30, netmask: 64),
            VirtualServer(key: .firewallMark(.inet, 7), scheduler: "wrr"),
            VirtualServer(key: .firewallMark(.inet6, 8), scheduler: "rr"),
        ]
        let reals = [
            RealServer(key: RealServerKey(address: .v("10.244.1.5"), port: 8080), forwarding: .masquerade, weight: 2,
                       upperThreshold: 100, lowerThreshold: 50),
            RealServer(key: RealServerKey(address: .v("10.244.1.6"), port: 80), forwarding: .tunnel, weight: 0),
            RealServer(key: RealServerKey(address: .v("10.244.1.7"), port: 80), forwarding: .directRoute, weight: 5),
        ]
        try ipvs.applyAll(servers.map { .addVirtualServer($0) } + reals.map { .addRealServer(web, $0) })
        let read = try ipvs.virtualServers().map(\.server)
        #expect(Set(read) == Set(servers))
        #expect(Set(try ipvs.realServers(of: web).map(\.server)) == Set(reals))

        try ipvs.flush()
        try Kernel.ipvsadm("-A -u 10.96.0.53:53 -s lc -p 120 -M 255.255.0.0")
        try Kernel.ipvsadm("-a -u 10.96.0.53:53 -r 10.244.2.1:5353 -m -w 4 -x 10 -y 5")
        let status = try #require(try ipvs.virtualServers().first)
        #expect(status.server == VirtualServer(key: .service(.udp, .v("10.96.0.53"), 53), scheduler: "lc",
                                               flags: .persistent, timeout: 120, netmask: 0xffff_0000))
        #expect(try ipvs.realServers(of: status.server.key).map(\.server) == [
            RealServer(key: RealServerKey(address: .v("10.244.2.1"), port: 5353), forwarding: .masquerade, weight: 4,
                       upperThreshold: 10, lowerThreshold: 5),
        ])
    }

    @Test func timeoutsRoundTrip() throws {
        let ipvs = try Kernel.clean()
        let before = try ipvs.timeouts()
        try ipvs.setTimeouts(Timeouts(tcp: 901, tcpFin: 121, udp: 301))
        #expect(try ipvs.timeouts() == Timeouts(tcp: 901, tcpFin: 121, udp: 301))
        #expect(try Kernel.run(["ipvsadm", "-L", "--timeout"]).output.contains("901 121 301"))
        try ipvs.setTimeouts(before)
    }

    @Test func flushEmptiesTheTable() throws {
        let ipvs = try Kernel.clean()
        try ipvs.applyAll([.addVirtualServer(VirtualServer(key: web, scheduler: "rr"))])
        #expect(try Kernel.ipvsadmSave().count == 1)
        try ipvs.flush()
        #expect(try Kernel.ipvsadmSave().isEmpty)
    }

    /// Each kernel refusal arrives as the documented errno, classified, at the right operation index.
    @Test func kernelErrorsAreClassified() throws {
        let ipvs = try Kernel.clean()
        let missing = VirtualServerKey.service(.tcp, .v("10.96.9.9"), 9)
        let real = RealServer(address: .v("10.244.1.5"), port: 8080)
        let operations: [IPVSOperation] = [
            .addVirtualServer(VirtualServer(key: web, scheduler: "rr")),  // 0 ok
            .addVirtualServer(VirtualServer(key: web, scheduler: "rr")),  // 1 EEXIST
            .deleteVirtualServer(missing),  // 2 ESRCH
            .addVirtualServer(VirtualServer(key: missing, scheduler: "nosuch")),  // 3 ENOENT: scheduler
            .addRealServer(missing, real),  // 4 ESRCH
            .updateRealServer(web, real),  // 5 ENOENT: real server
            .deleteRealServer(web, real.key),  // 6 ENOENT: real server
            .addRealServer(web, real),  // 7 ok
            .addRealServer(web, real),  // 8 EEXIST
            .addRealServer(web, RealServer(address: .v("10.244.1.9"), port: 80, weight: -1)),  // 9 ERANGE
            .addRealServer(web, RealServer(address: .v("255.255.255.255"), port: 80)),  // 10 EINVAL
        ]
        for mode in [NetlinkConnection.AckMode.lastOfBatch, .everyRequest] {
            try ipvs.flush()
            ipvs.ackMode = mode
            let failures = try ipvs.apply(operations)
            #expect(failures.keys.sorted() == [1, 2, 3, 4, 5, 6, 8, 9, 10], "\(mode)")
            #expect(failures[1]?.kind == .alreadyExists)
            #expect(failures[2]?.kind == .noSuchVirtualServer)
            #expect(failures[3]?.kind == .unknownScheduler)
            #expect(failures[4]?.kind == .noSuchVirtualServer)
            #expect(failures[5]?.kind == .noSuchRealServer)
            #expect(failures[6]?.kind == .noSuchRealServer)
            #expect(failures[8]?.kind == .alreadyExists)
            #expect(failures[9]?.kind == .outOfRange)
            #expect(failures[10]?.kind == .invalid)
            #expect(failures[3]?.description.contains("10.96.9.9:9") == true)
        }
        #expect(try Kernel.ipvsadmSave() == [
            "-A -t 10.96.0.10:80 -s rr",
            "-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1",
        ])
    }

    /// 11,000 services × 10 real servers in two calls, one per ack mode: every object arrives,
    /// none lost to ENOBUFS. No flush in between: re-adding after a flush is slowed by the kernel's trash list.
    @Test func largeBatchesLoseNothing() throws {
        let ipvs = try Kernel.clean()
        func operations(services: Range<Int>) -> [IPVSOperation] {
            var out: [IPVSOperation] = []
            for s in services {
                let key = VirtualServerKey.service(.tcp, IPAddress("10.100.\(s / 250).\(s % 250 + 1)")!, 80)
                out.append(.addVirtualServer(VirtualServer(key: key, scheduler: "rr")))
                for r in 0..<10 {
                    out.append(.addRealServer(key, RealServer(address: IPAddress("10.200.\(r).\(s % 250 + 1)")!, port: 8080)))
                }
            }
            return out
        }
        ipvs.ackMode = .everyRequest
        #expect(try ipvs.apply(operations(services: 0..<1_000)).isEmpty)
        ipvs.ackMode = .lastOfBatch
        #expect(try ipvs.apply(operations(services: 1_000..<11_000)).isEmpty)
        let lines = try Kernel.ipvsadmSave()
        #expect(lines.filter { $0.hasPrefix("-A") }.count == 11_000)
        #expect(lines.filter { $0.hasPrefix("-a") }.count == 110_000)
        #expect(try ipvs.virtualServers().count == 11_000)
        try ipvs.flush()
    }

    /// A receive buffer too small for a batch's acks is reported, never passed over in silence.
    @Test func lostAcksAreReportedAsUnknownState() throws {
        _ = try Kernel.clean()
        let ipvs = try KernelIPVS(receiveBuffer: 16 * 1024)
        ipvs.ackMode = .everyRequest
        let operations = (0..<2_000).map { i in
            IPVSOperation.addVirtualServer(VirtualServer(key: .service(.udp, IPAddress("10.101.\(i / 250).\(i % 250 + 1)")!, 53),
                                                         scheduler: "rr"))
        }
        #expect {
            try ipvs.apply(operations)
        } throws: { error in
            (error as? IPVSError)?.kind == .stateUnknown
        }
        try ipvs.flush()
    }

    @Test func missingIPVSFamilyIsReportedClearly() {
        let error = IPVSError(kind: .unavailable, underlying: NetlinkError(errno: .noSuchFileOrDirectory, operation: "resolve generic netlink family IPVS"))
        #expect(error.description.hasPrefix("this kernel has no IPVS (is ip_vs loaded?)"))
    }
}
