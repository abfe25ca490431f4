import Testing
@testable import IPVS
@testable import IPVSText

@Suite struct RuleParserTests {
    private let tcp80 = SampleTable.tcp("10.0.0.1", 80)

    private func rules(_ text: String) throws -> [Rule] {
        try RuleParser.parse(text).get()
    }

    /// The single operation on a one-line input.
    private func operation(_ text: String) throws -> IPVSOperation {
        let parsed = try rules(text)
        guard parsed.count == 1, case .operation(let operation) = parsed[0].action else {
            throw NotOneOperation(rules: parsed)
        }
        return operation
    }

    private func parseError(_ text: String) -> RuleParseError? {
        if case .failure(let error) = RuleParser.parse(text) { return error }
        return nil
    }

    // MARK: Virtual servers

    /// ipvsadm's defaults: scheduler wlc, not persistent, per-client mask.
    @Test func addServiceDefaults() throws {
        #expect(try operation("-A -t 10.0.0.1:80") == .addVirtualServer(VirtualServer(key: tcp80, scheduler: "wlc")))
        #expect(try operation("-A -t 10.0.0.1:80").description == "add virtual server TCP 10.0.0.1:80")
    }

    /// `-E` replaces the service, so a missing `-s` resets it to wlc as ipvsadm does.
    @Test func editServiceResetsToDefaults() throws {
        #expect(try operation("-E -t 10.0.0.1:80") == .updateVirtualServer(VirtualServer(key: tcp80, scheduler: "wlc")))
        #expect(try operation("--edit-service --tcp-service 10.0.0.1:80 --scheduler rr")
            == .updateVirtualServer(VirtualServer(key: tcp80, scheduler: "rr")))
    }

    /// `-p` alone means 360 s (libipvs' IPVS_SVC_PERSISTENT_TIMEOUT); a following option is not its value.
    @Test(arguments: [
        ("-A -t 10.0.0.1:80 -p", 360),
        ("-A -t 10.0.0.1:80 -p -s rr", 360),
        ("-A -t 10.0.0.1:80 -p 10800", 10800),
        ("-A -t 10.0.0.1:80 --persistent=1", 1),
        ("-A -t 10.0.0.1:80 --persistent 2678400", 2_678_400),
    ])
    func persistence(line: String, timeout: UInt32) throws {
        guard case .addVirtualServer(let server) = try operation(line) else {
            Issue.record("not an add")
            return
        }
        #expect(server.flags == .persistent)
        #expect(server.timeout == timeout)
    }

    @Test func everyServiceOption() throws {
        #expect(try operation("-A -t 10.0.0.1:0 -s sh -p 60 -M 255.255.255.0 --pe sip -b sh-fallback,sh-port")
            == .addVirtualServer(VirtualServer(key: .service(.tcp, SampleTable.address("10.0.0.1"), 0), scheduler: "sh",
                                               flags: [.persistent, .schedulerFallback, .schedulerPort], timeout: 60,
                                               netmask: 0xffff_ff00, persistenceEngine: "sip")))
        #expect(try operation("-A -u 10.0.0.1:53 -o -b flag-3")
            == .addVirtualServer(VirtualServer(key: .service(.udp, SampleTable.address("10.0.0.1"), 53),
                                               flags: [.onePacket, .scheduler3])))
        #expect(try operation("-A --sctp-service 10.0.0.1:3868 -s mh -b mh-port,mh-fallback")
            == .addVirtualServer(VirtualServer(key: .service(.sctp, SampleTable.address("10.0.0.1"), 3868), scheduler: "mh",
                                               flags: [.schedulerFallback, .schedulerPort])))
    }

    @Test func ipv6Services() throws {
        #expect(try operation("-A -t [2001:db8::1]:443 -s rr -p 30 -M 64")
            == .addVirtualServer(VirtualServer(key: SampleTable.tcp("2001:db8::1", 443), scheduler: "rr",
                                               flags: .persistent, timeout: 30, netmask: 64)))
        // Without brackets an IPv6 address has no port, which needs persistence.
        #expect(try operation("-A -t 2001:db8::1 -p")
            == .addVirtualServer(VirtualServer(key: SampleTable.tcp("2001:db8::1", 0), flags: .persistent, timeout: 360)))
    }

    @Test func firewallMarks() throws {
        #expect(try operation("-A -f 7 -s rr")
            == .addVirtualServer(VirtualServer(key: .firewallMark(.inet, 7), scheduler: "rr")))
        #expect(try operation("-A --fwmark-service 4294967295 --ipv6 -p -M 48 -o")
            == .addVirtualServer(VirtualServer(key: .firewallMark(.inet6, 4_294_967_295), flags: [.persistent, .onePacket],
                                               timeout: 360, netmask: 48)))
        #expect(try operation("-D -f 7 -6") == .deleteVirtualServer(.firewallMark(.inet6, 7)))
    }

    @Test func deleteAndFlush() throws {
        #expect(try operation("-D -t 10.0.0.1:80") == .deleteVirtualServer(tcp80))
        #expect(try operation("--delete-service -u 10.0.0.1:53")
            == .deleteVirtualServer(.service(.udp, SampleTable.address("10.0.0.1"), 53)))
        #expect(try rules("-C") == [Rule(line: 1, action: .flush)])
        #expect(try rules("--clear") == [Rule(line: 1, action: .flush)])
    }

    // MARK: Real servers

    /// ipvsadm's defaults: direct routing, weight 1; direct routing keeps the service's port.
    @Test func addServerDefaults() throws {
        #expect(try operation("-a -t 10.0.0.1:80 -r 10.244.1.5:8080")
            == .addRealServer(tcp80, RealServer(address: SampleTable.address("10.244.1.5"), port: 80, forwarding: .directRoute)))
    }

    @Test(arguments: [
        // -r without a port: the service's port.
        ("-a -t 10.0.0.1:80 -r 10.244.1.5 -m", ForwardingMethod.masquerade, UInt16(80)),
        ("-a -t 10.0.0.1:80 -r 10.244.1.5:8080 -m", .masquerade, 8080),
        ("-a -t 10.0.0.1:80 -r 10.244.1.5:8080 --masquerading", .masquerade, 8080),
        // Tunnelling and direct routing cannot change the port.
        ("-a -t 10.0.0.1:80 -r 10.244.1.5:8080 -i", .tunnel, 80),
        ("-a -t 10.0.0.1:80 -r 10.244.1.5:8080 --ipip --tun-type ipip", .tunnel, 80),
        ("-a -t 10.0.0.1:80 -r 10.244.1.5:8080 -g", .directRoute, 80),
        ("-a -t 10.0.0.1:80 -r 10.244.1.5:8080 --gatewaying", .directRoute, 80),
    ])
    func forwardingAndPort(line: String, forwarding: ForwardingMethod, port: UInt16) throws {
        #expect(try operation(line)
            == .addRealServer(tcp80, RealServer(address: SampleTable.address("10.244.1.5"), port: port, forwarding: forwarding)))
    }

    @Test func weightsAndThresholds() throws {
        var real = RealServer(address: SampleTable.address("10.244.1.5"), port: 8080, forwarding: .masquerade, weight: 2_147_483_647)
        real.upperThreshold = 2_147_483_647
        real.lowerThreshold = 0
        #expect(try operation("-e -t 10.0.0.1:80 -r 10.244.1.5:8080 -m -w 2147483647 -x 2147483647 -y 0")
            == .updateRealServer(tcp80, real))
        #expect(try operation("--edit-server -t 10.0.0.1:80 --real-server 10.244.1.5:8080 -m --weight=0 --u-threshold=10 --l-threshold=5")
            == .updateRealServer(tcp80, RealServer(key: real.key, forwarding: .masquerade, weight: 0,
                                                   upperThreshold: 10, lowerThreshold: 5)))
    }

    /// A firewall-mark service has no port, so `-r` without one means port 0, whatever the method.
    @Test func realServersOfFirewallMarks() throws {
        #expect(try operation("-a -f 7 -r 10.244.1.5")
            == .addRealServer(.firewallMark(.inet, 7), RealServer(address: SampleTable.address("10.244.1.5"), port: 0,
                                                                   forwarding: .directRoute)))
        #expect(try operation("-a -f 7 -6 -r [fd00::5]:8080 -g")
            == .addRealServer(.firewallMark(.inet6, 7), RealServer(address: SampleTable.address("fd00::5"), port: 8080,
                                                                    forwarding: .directRoute)))
    }

    /// Only tunnelling may send to a real server of the other family.
    @Test func tunnellingAcrossFamilies() throws {
        #expect(try operation("-a -t 10.0.0.1:80 -r [fd00::5]:80 -i")
            == .addRealServer(tcp80, RealServer(address: SampleTable.address("fd00::5"), port: 80, forwarding: .tunnel)))
    }

    @Test func deleteServer() throws {
        #expect(try operation("-d -t 10.0.0.1:80 -r 10.244.1.5:8080")
            == .deleteRealServer(tcp80, RealServerKey(address: SampleTable.address("10.244.1.5"), port: 8080)))
        #expect(try operation("--delete-server -t 10.0.0.1:80 -r 10.244.1.5")
            == .deleteRealServer(tcp80, RealServerKey(address: SampleTable.address("10.244.1.5"), port: 80)))
    }

    // MARK: Lines

    @Test func lineNumbersSkipBlanksAndComments() throws {
        let text = """
            # saved by ipvsadm
            -A -t 10.0.0.1:80 -s rr   # the cluster IP

            \t
            ipvsadm -a -t 10.0.0.1:80 -r 10.244.1.5:8080 -m\r
            -C
            """
        let parsed = try rules(text)
        #expect(parsed.map(\.line) == [2, 5, 6])
        #expect(parsed.last?.action == .flush)
        #expect(try rules("") == [])
        #expect(try rules("\n\n# nothing\n") == [])
    }

    /// Parsing stops at the first bad line; the good lines before it are not returned.
    @Test func stopsAtFirstBadLine() {
        let text = "-A -t 10.0.0.1:80\n-A -t 10.0.0.1:70000\n-A -t 10.0.0.1:99999\n"
        #expect(parseError(text) == RuleParseError(line: 2, message: "port 70000 out of range 0…65535"))
        #expect(parseError(text)?.description == "line 2: port 70000 out of range 0…65535")
    }

    struct BadLine: Sendable, CustomTestStringConvertible {
        let text: String
        let line: Int
        let fragment: String
        var testDescription: String { text.debugDescription }

        init(_ text: String, line: Int = 1, _ fragment: String) {
            self.text = text
            self.line = line
            self.fragment = fragment
        }
    }

    @Test(arguments: [
        BadLine("-A -t 10.0.0.1:70000", "port 70000 out of range"),
        BadLine("# rules\n\n-A -t 10.0.0.1:80\n-A -t 10.0.0.1:99999999999999999999999999", line: 4, "port 99999999999999999999999999 out of range"),
        BadLine("-A -t 10.0.0.1:80 --foo", "unknown option --foo"),
        BadLine("-A -t 10.0.0.1:80\n\n-A -t 10.0.0.2:80 --foo=bar", line: 3, "unknown option --foo"),
        BadLine("-A -t 10.0.0.1:80 -Z", "unknown option -Z"),
        BadLine("\n\n\n\n-a -t 10.0.0.1:80 -r 10.0.0.2 -w 2147483648", line: 5, "weight must be 0…2147483647"),
        BadLine("-a -t 10.0.0.1:80 -r 10.0.0.2 -w -1", "weight must be 0…2147483647, not -1"),
        BadLine("-a -t 10.0.0.1:80 -r 10.0.0.2 -w 184467440737095516160", "weight must be 0…2147483647"),
        BadLine("-a -t 10.0.0.1:80 -r 10.0.0.2 -w 1e3", "weight must be"),
        BadLine("-a -t 10.0.0.1:80 -r 10.0.0.2 -x 2147483648", "upper threshold must be 0…2147483647"),
        BadLine("-a -t 10.0.0.1:80 -r 10.0.0.2 -y +1", "lower threshold must be 0…2147483647"),
        BadLine("-A -s rr", "missing service address"),
        BadLine("-D", "missing service address"),
        BadLine("-a -t 10.0.0.1:80 -m", "missing real server (-r)"),
        BadLine("-d -t 10.0.0.1:80", "missing real server (-r)"),
        BadLine("-A -t 10.0.0.1:http", "port http is not a number (service names are not supported)"),
        BadLine("-A -t 10.0.0.1:8o", "invalid port 8o"),
        BadLine("-A -t 10.0.0.1:", "missing port after :"),
        BadLine("-A -t www.example.com:80", "invalid address www.example.com:80"),
        BadLine("-A -t 80", "invalid address 80"),
        BadLine("-A -t 10.0.0.256:80", "invalid address 10.0.0.256:80"),
        BadLine("-A -t fd00::zz:80", "[address]:port"),
        BadLine("-A -t [fd00::1]", "expected :port after ]"),
        BadLine("-A -t [fd00::1:80", "missing ]"),
        BadLine("-A -t [10.0.0.1]:80", "invalid IPv6 address 10.0.0.1"),
        BadLine("-A -t 10.0.0.1", "port 0 (any port) needs a persistent service (-p)"),
        BadLine("-E -t 10.0.0.1:0 -s rr", "needs a persistent service"),
        BadLine("-A -t 10.0.0.1:53 -o", "one-packet scheduling (-o) is only for UDP services"),
        BadLine("-A --sctp-service 10.0.0.1:53 --ops", "only for UDP services"),
        BadLine("-A -f 0", "firewall mark must be 1…4294967295, not 0"),
        BadLine("-A -f 4294967296", "firewall mark must be 1…4294967295"),
        BadLine("-A -f -1", "firewall mark must be 1…4294967295, not -1"),
        BadLine("-A -t 10.0.0.1:80 -6", "-6 is only for firewall-mark services (-f)"),
        BadLine("-A -t 10.0.0.1:80 -p 0", "persistence timeout must be 1…2678400, not 0"),
        BadLine("-A -t 10.0.0.1:80 -p 2678401", "persistence timeout must be 1…2678400"),
        BadLine("-A -t 10.0.0.1:80 -p 5m", "persistence timeout must be 1…2678400, not 5m"),
        BadLine("-A -t 10.0.0.1:80 --persistent=", "persistence timeout must be"),
        BadLine("-A -t 10.0.0.1:80 -p -M 255.255.255.999", "invalid netmask 255.255.255.999"),
        BadLine("-A -t 10.0.0.1:80 -p -M 24", "IPv4 services take a dotted mask"),
        BadLine("-A -t [fd00::1]:80 -p -M 129", "IPv6 netmask (a prefix length) must be 1…128, not 129"),
        BadLine("-A -t [fd00::1]:80 -p -M ffff::", "IPv6 netmask (a prefix length) must be 1…128"),
        BadLine("-A -t 10.0.0.1:80 -b sh-port", "scheduler flag sh-port needs the sh scheduler, not wlc"),
        BadLine("-A -t 10.0.0.1:80 -s mh -b mh-port,sh-fallback", "sh-fallback needs the sh scheduler, not mh"),
        BadLine("-A -t 10.0.0.1:80 -b flag-4", "unknown scheduler flag flag-4"),
        BadLine("-A -t 10.0.0.1:80 -b ,,", "no scheduler flags"),
        BadLine("-A -t 10.0.0.1:80 -s sixteen-letters!", "longer than 15 characters"),
        BadLine("-A -t 10.0.0.1:80 --pe seventeen-letters", "longer than 16 characters"),
        BadLine("-A -t 10.0.0.1:80 -w 1", "-w is not allowed with -A"),
        BadLine("--add-service -t 10.0.0.1:80 --real-server 10.0.0.2", "--real-server is not allowed with --add-service"),
        BadLine("-a -t 10.0.0.1:80 -r 10.0.0.2 -s rr", "-s is not allowed with -a"),
        BadLine("-D -t 10.0.0.1:80 -s rr", "-s is not allowed with -D"),
        BadLine("-d -t 10.0.0.1:80 -r 10.0.0.2 -m", "-m is not allowed with -d"),
        BadLine("-C -t 10.0.0.1:80", "-t is not allowed with -C"),
        BadLine("-A -t 10.0.0.1:80 -f 3", "-t and -f both set the service address"),
        BadLine("-A -t 10.0.0.1:80 -s rr --scheduler wlc", "-s and --scheduler both set the scheduler"),
        BadLine("-a -t 10.0.0.1:80 -r 10.0.0.2 -m -g", "-m and -g both set the forwarding method"),
        BadLine("-A -t 10.0.0.1:80 -D", "more than one command (-A and -D)"),
        BadLine("-L -n", "command -L cannot appear in a rules file"),
        BadLine("--restore", "command --restore cannot appear in a rules file"),
        BadLine("hello world", "expected a command (-A, -E, -D, -a, -e, -d or -C), found hello"),
        BadLine("-t 10.0.0.1:80", "expected a command"),
        BadLine("-A -t 10.0.0.1:80 extra", "unexpected argument extra"),
        BadLine("-A -t 10.0.0.1:80 -", "unexpected argument -"),
        BadLine("-A -t", "-t needs a value"),
        BadLine("-A -t 10.0.0.1:80 --ops=1", "--ops takes no value"),
        BadLine("-a -t 10.0.0.1:80 -r [2001:db8::2]:80 -m", "differ in address family; only tunnelling (-i) allows that"),
        BadLine("-a -f 1 -r [2001:db8::2]:80 -g", "differ in address family"),
        BadLine("-a -t 10.0.0.1:80 -r 10.0.0.2 --tun-type ipip", "--tun-type needs tunnelling (-i)"),
        BadLine("-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue", "tunnel type gue is not supported; only ipip is"),
        BadLine("-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-port 6080", "unknown option --tun-port"),
        BadLine("-A -t 10.0.0.1:80 -s rr\u{0}", "unexpected control character 0x00"),
        BadLine("-A -t 10.0.0.1:80\n\u{1B}[31m", line: 2, "unexpected control character 0x1B"),
    ])
    func badLine(_ bad: BadLine) {
        let error = parseError(bad.text)
        #expect(error?.line == bad.line)
        #expect(error?.message.contains(bad.fragment) == true, "\(String(describing: error))")
        #expect(error?.description.hasPrefix("line \(bad.line): ") == true)
    }

    /// Long garbage is shortened in the message.
    @Test func longWordsAreShortened() {
        let word = String(repeating: "x", count: 500)
        #expect(parseError("-A -t 10.0.0.1:80 -s rr \(word)")?.message
            == "unexpected argument \(String(repeating: "x", count: 40))…")
    }

    @Test func nonUTF8BytesGetALineNumber() {
        let bytes = Array("-A -t 10.0.0.1:80\n-A -t 10.0.0.2:80 -s ".utf8) + [0xC3, 0x28] + Array("\n".utf8)
        #expect(RuleParser.parse(bytes) == .failure(RuleParseError(line: 2, message: "not valid UTF-8 text; is this a text file?")))
        // Bytes in a comment are never read.
        #expect(RuleParser.parse(Array("-C # ".utf8) + [0xFF, 0xFE]) == .success([Rule(line: 1, action: .flush)]))
    }

    /// Unicode that is valid but meaningless is an ordinary bad word.
    @Test func unicodeWords() {
        #expect(parseError("-A -t 10.0.0.1:80 -s rr ✓")?.message == "unexpected argument ✓")
        #expect(parseError("-A -t １０.0.0.1:80")?.message == "invalid address １０.0.0.1:80")
    }

    /// Random bytes and shuffled rule words must never crash, and every error names a real line.
    @Test func garbageNeverCrashes() {
        var random = SplitMix64(seed: 0x1234_5678)
        let words = ["-A", "-E", "-D", "-a", "-e", "-d", "-C", "-t", "-u", "-f", "-6", "-s", "-p", "-M", "-b", "-o",
                     "--pe", "-r", "-m", "-g", "-i", "-w", "-x", "-y", "--tun-type", "10.0.0.1:80", "[fd00::1]:80",
                     "fd00::1", "0", "65536", "-1", "4294967296", "99999999999999999999999", "sh", "sh-port,flag-1",
                     "255.255.255.0", "ipip", "#", "\t", "[", "]", ":", "=", "--weight=", "--persistent="]
        for _ in 0..<3000 {
            let bytes: [UInt8]
            if random.next() % 2 == 0 {
                bytes = (0..<random.next() % 120).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            } else {
                let text = (0..<random.next() % 14).map { _ in words[Int(random.next() % UInt64(words.count))] }
                    .joined(separator: random.next() % 9 == 0 ? "\n" : " ")
                bytes = Array(text.utf8)
            }
            let lineCount = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).count
            switch RuleParser.parse(bytes) {
            case .success(let rules):
                #expect(rules.allSatisfy { (1...lineCount).contains($0.line) })
            case .failure(let error):
                #expect((1...lineCount).contains(error.line))
                #expect(!error.message.isEmpty)
            }
        }
    }

    // MARK: Round trip

    /// What `ipvsadm -S -n` writes reads back as the operations that rebuild the same table.
    @Test func roundTripThroughSaveFormat() throws {
        let saved = SaveFormat.render(SampleTable.table)
        let actions = try rules(saved).map(\.action)
        let expected = IpvsadmOrder.sorted(SampleTable.table).flatMap { service, reals in
            [RuleAction.operation(.addVirtualServer(service.server))]
                + reals.map { .operation(.addRealServer(service.server.key, $0.server)) }
        }
        #expect(actions == expected)
        #expect(actions.count == 19)
    }

    /// Saving the parsed rules again gives the same text.
    @Test func savedTextIsAFixedPoint() throws {
        var table: [(VirtualServerStatus, [RealServerStatus])] = []
        for rule in try rules(SampleTable.saved) {
            switch rule.action {
            case .operation(.addVirtualServer(let server)):
                table.append((VirtualServerStatus(server: server), []))
            case .operation(.addRealServer(_, let real)):
                table[table.count - 1].1.append(RealServerStatus(server: real))
            default:
                Issue.record("unexpected \(rule.action)")
            }
        }
        #expect(SaveFormat.render(table) == SampleTable.saved)
    }
}

struct NotOneOperation: Error {
    let rules: [Rule]
}

/// A small deterministic generator, so a failing garbage input can be reproduced.
struct SplitMix64 {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
