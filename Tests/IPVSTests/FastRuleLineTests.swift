import Testing
@testable import IPVS
@testable import IPVSText

/// The fast path must read every line it accepts exactly as the general parser does.
@Suite struct FastRuleLineTests {
    static let services = ["-t 10.0.0.1:80", "-u 10.0.0.1:53", "--sctp-service 10.0.0.1:3868", "-t 10.0.0.1:0",
                           "-t 192.168.1.255:65535", "-t 10.0.0.1", "-t 10.0.0.01:80", "-t 10.0.0.1:65536",
                           "-t [fd00::1]:80", "-f 7", "-t 256.0.0.1:80"]
    static let serviceOptions = ["", "-s rr", "-s wlc -p 300", "-p 1", "-p 2678400", "-p 2678401", "-s rr -p",
                                 "-s sixteencharssss", "-s RR", "-s rr -s lc", "-M 255.255.255.0", "-p 0", "-o"]
    static let realServers = ["-r 10.244.0.5:8080", "-r 10.244.0.5", "-r 10.244.0.5:0", "-r 10.244.0.5:99999",
                              "-r [fd00::5]:80", ""]
    static let realOptions = ["", "-m", "-g", "-i", "-m -w 0", "-w 7", "-m -w 2147483647", "-m -w 2147483648",
                              "-m -g", "-w 1 -w 2", "-x 10", "-m -w -1"]

    static var corpus: [String] {
        var lines: [String] = []
        for service in services {
            for command in ["-A", "-E", "-D"] {
                for options in serviceOptions { lines.append("\(command) \(service) \(options)") }
            }
            for command in ["-a", "-e", "-d"] {
                for real in realServers {
                    for options in realOptions { lines.append("\(command) \(service) \(real) \(options)") }
                }
            }
        }
        // Shapes the fast path must hand over: spacing, tabs, comments, a leading word, reordering.
        lines += ["-A  -t 10.0.0.1:80 -s rr", "-A\t-t 10.0.0.1:80", "-A -t 10.0.0.1:80 # web", "ipvsadm -A -t 10.0.0.1:80",
                  "-a -r 10.244.0.5:8080 -t 10.0.0.1:80 -m", "-A -s rr -t 10.0.0.1:80", "", " ", "-A -t 10.0.0.1:80 "]
        return lines.map { $0.trimmingSuffixSpaces }
    }

    @Test func fastPathAgreesWithTheGeneralParser() {
        var accepted = 0
        for line in Self.corpus {
            let bytes = Array(line.utf8)[...]
            guard let fast = FastRuleLine.parse(bytes) else { continue }
            accepted += 1
            let general = try? RuleParser.parseLine(bytes)
            #expect(general == fast, "\(line)")
        }
        #expect(accepted > 100)  // the corpus exercises the fast path, not only the fallback
    }

    @Test func savedLinesTakeTheFastPath() {
        for line in ["-A -t 10.96.0.10:80 -s rr", "-A -u 10.96.0.10:53 -s lc -p 10800",
                     "-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1", "-a -t 10.96.0.10:80 -r 10.244.1.6:80 -g -w 0"] {
            #expect(FastRuleLine.parse(Array(line.utf8)[...]) != nil, "\(line)")
        }
    }
}

private extension String {
    var trimmingSuffixSpaces: String {
        var s = self
        while s.hasSuffix(" ") { s.removeLast() }
        return s
    }
}

@Suite struct StreamedSaveTests {
    /// Streaming from a handle prints what rendering a whole table prints.
    @Test func writeFromHandleEqualsRender() throws {
        let fake = FakeIPVS()
        let keys: [VirtualServerKey] = [.service(.tcp, IPAddress("192.168.0.1")!, 80), .service(.tcp, IPAddress("10.0.0.1")!, 80),
                                        .service(.udp, IPAddress("10.0.0.1")!, 53)]
        var operations: [IPVSOperation] = []
        for key in keys {
            operations.append(.addVirtualServer(VirtualServer(key: key, scheduler: "rr")))
            for last in [9, 3, 200] {
                operations.append(.addRealServer(key, RealServer(address: IPAddress("10.244.0.\(last)")!, port: 8080)))
            }
        }
        try fake.applyAll(operations)
        var streamed = ""
        try SaveFormat.write(from: fake, to: &streamed)
        #expect(streamed == SaveFormat.render(try fake.table()))
        #expect(streamed.split(separator: "\n").count == 12)
    }
}

@Suite struct RestoreTests {
    /// Refusals keep their line numbers across the chunks operations are applied in.
    @Test func failuresNameTheirLinesAcrossChunks() throws {
        let fake = FakeIPVS()
        var text = "-A -t 10.0.0.1:80 -s rr\n"
        for i in 0..<(Restore.chunk + 10) {
            text += "-a -t 10.0.0.1:80 -r 10.1.\(i / 250).\(i % 250 + 1):80 -m -w 1\n"
        }
        text += "-a -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w 1\n"  // again: EEXIST
        text += "-a -t 10.9.9.9:80 -r 10.1.0.1:80 -m -w 1\n"  // no such service: ESRCH
        let rules = try RuleParser.parse(text).get()
        let failures = try Restore.apply(rules, to: fake)
        let last = Restore.chunk + 12
        #expect(failures.map(\.line) == [last, last + 1])
        #expect(failures.map(\.error.kind) == [.alreadyExists, .noSuchVirtualServer])
        #expect(try fake.realServers(of: .service(.tcp, IPAddress("10.0.0.1")!, 80)).count == Restore.chunk + 10)
    }
}
