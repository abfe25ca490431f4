import IPVS
import IPVSText
import Testing
@testable import Proxy

@Suite struct FormatTests {
    @Test(arguments: [
        (IPVSOperation.addVirtualServer(VirtualServer(key: tcp("10.96.0.10", 80), scheduler: "rr")),
         "-A -t 10.96.0.10:80 -s rr"),
        (.addVirtualServer(VirtualServer(key: udp("fd00::a", 53), scheduler: "wrr")),
         "-A -u [fd00::a]:53 -s wrr"),
        (.addVirtualServer(VirtualServer(key: .service(.sctp, ip("10.96.0.10"), 3868), scheduler: "rr")),
         "-A --sctp-service 10.96.0.10:3868 -s rr"),
        (.addVirtualServer(VirtualServer(key: tcp("10.96.0.10", 80), scheduler: "rr", flags: .persistent, timeout: 10800)),
         "-A -t 10.96.0.10:80 -s rr -p 10800"),
        (.addVirtualServer(VirtualServer(key: tcp("10.96.0.10", 80), scheduler: "rr", flags: .persistent, timeout: 60,
                                         netmask: 0xffff_ff00)),
         "-A -t 10.96.0.10:80 -s rr -p 60 -M 255.255.255.0"),
        (.addVirtualServer(VirtualServer(key: tcp("fd00::a", 80), scheduler: "rr", flags: .persistent, timeout: 60,
                                         netmask: 64)),
         "-A -t [fd00::a]:80 -s rr -p 60 -M 64"),
        (.addVirtualServer(VirtualServer(key: tcp("10.96.0.10", 80), scheduler: "mh", flags: [.schedulerPort, .schedulerFallback])),
         "-A -t 10.96.0.10:80 -s mh -b mh-fallback,mh-port"),
        (.addVirtualServer(VirtualServer(key: udp("10.96.0.10", 53), scheduler: "rr", flags: [.onePacket, .schedulerPort])),
         "-A -u 10.96.0.10:53 -s rr -o -b flag-2"),
        (.addVirtualServer(VirtualServer(key: .firewallMark(.inet6, 7), scheduler: "rr")),
         "-A -f 7 -6 -s rr"),
        (.updateVirtualServer(VirtualServer(key: tcp("10.96.0.10", 80), scheduler: "lc")),
         "-E -t 10.96.0.10:80 -s lc"),
        (.deleteVirtualServer(tcp("10.96.0.10", 80)),
         "-D -t 10.96.0.10:80"),
        (.addRealServer(tcp("10.96.0.10", 80), real("10.244.0.6", 8080)),
         "-a -t 10.96.0.10:80 -r 10.244.0.6:8080 -m -w 1"),
        (.addRealServer(tcp("10.96.0.10", 80), RealServer(key: rkey("10.244.0.6", 8080), forwarding: .directRoute,
                                                          weight: 3, upperThreshold: 100, lowerThreshold: 10)),
         "-a -t 10.96.0.10:80 -r 10.244.0.6:8080 -g -w 3 -x 100 -y 10"),
        (.updateRealServer(tcp("10.96.0.10", 80), real("10.244.0.6", 8080, weight: 0)),
         "-e -t 10.96.0.10:80 -r 10.244.0.6:8080 -m -w 0"),
        (.deleteRealServer(udp("fd00::a", 53), rkey("fd00::6", 53)),
         "-d -u [fd00::a]:53 -r [fd00::6]:53"),
    ])
    func ipvsadmNotation(_ operation: IPVSOperation, _ expected: String) {
        #expect(IPVSAdmFormat.command(operation) == expected)
    }
}
