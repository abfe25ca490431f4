import Testing
@testable import IPVS
@testable import IPVSText

/// Mutated rule lines against a model of how ipvsadm reads them (ipvsadm.c `parse_options` and
/// `process_options`, popt's option rules, glibc's `inet_aton` and `strtol`). No line may be
/// half-applied: whatever kipvs accepts, ipvsadm reads as the very same rule. kipvs may refuse
/// more (host and service names, bundled short options, signs on numbers, doubtful orders).
@Suite struct RestoreFuzzTests {
    /// Lines that use every option the model knows, in both spellings.
    static let baseLines = [
        "-A -t 10.0.0.1:80 -s rr",
        "-E -u 10.0.0.2:53 -s sh -p 600 -M 255.255.255.0",
        "-A -u 10.0.0.2:53 -o -p",
        "-A -t 10.0.0.4:5060 -p --pe sip",
        "-D -u 10.0.0.2:53",
        "-a -t 10.0.0.1:80 -r 10.244.1.5:8080 -m -w 5 -x 100 -y 10",
        "-e -t 10.0.0.1:80 -r 10.244.1.5 -g -w 3",
        "-d -t 10.0.0.1:80 -r 10.244.1.5:8080",
        "-A -f 7 -6 -s lc -p 120 -M 64",
        "-a -f 7 -r 10.244.1.6 -i -w 2",
        "-A -t [2001:db8::1]:443 -p 30 -M 64",
        "-a -t [2001:db8::1]:443 -r [2001:db8::5]:8443 -m -w 0",
        "--add-server --tcp-service 10.0.0.1:80 --real-server 10.244.1.7:8080 --masquerading --weight=5",
        "--add-service --udp-service=10.0.0.3:53 --scheduler=rr --persistent=60",
        "-C",
    ]

    /// Bytes inserted and substituted: separators, option and number characters, `#`.
    static let alphabet: [Character] = ["#", " ", "\t", "-", "=", ":", ".", "0", "5", "a", "m", "[", "]", ","]

    static var mutations: [String] {
        var out: [String] = []
        for line in baseLines {
            let chars = Array(line)
            for i in 0...chars.count {
                for c in alphabet { out.append(String(chars[..<i]) + String(c) + String(chars[i...])) }
                out.append(String(chars[..<i]))
                if i < chars.count {
                    out.append(String(chars[..<i]) + String(chars[(i + 1)...]))
                    for c in alphabet { out.append(String(chars[..<i]) + String(c) + String(chars[(i + 1)...])) }
                }
            }
            let words = line.split(separator: " ").map(String.init)
            for i in words.indices {
                var dropped = words
                dropped.remove(at: i)
                out.append(dropped.joined(separator: " "))
                var doubled = words
                doubled.insert(words[i], at: i)
                out.append(doubled.joined(separator: " "))
                if i + 1 < words.count {
                    var swapped = words
                    swapped.swapAt(i, i + 1)
                    out.append(swapped.joined(separator: " "))
                }
                out.append((words[..<i] + ["#" + words[i]] + words[(i + 1)...]).joined(separator: " "))
            }
        }
        return out
    }

    @Test func noMutatedLineIsReadDifferentlyFromIpvsadm() {
        var (accepted, refused, outsideModel) = (0, 0, 0)
        for line in Self.mutations {
            let model = IpvsadmModel.read(line)
            let kipvs: RuleAction?
            switch RuleParser.parse(line) {
            case .success(let rules):
                guard rules.count <= 1 else {
                    Issue.record("one line read as \(rules.count) rules: \(line.debugDescription)")
                    continue
                }
                kipvs = rules.first?.action
            case .failure:
                refused += 1
                continue
            }
            accepted += 1
            switch model {
            case .rule(let meaning):
                #expect(kipvs.map(Meaning.init) == meaning, "\(line.debugDescription)")
            case .empty:
                #expect(kipvs == nil, "\(line.debugDescription): kipvs applies \(String(describing: kipvs)), ipvsadm nothing")
            case .refused(let why):
                Issue.record("kipvs accepts what ipvsadm refuses (\(why)): \(line.debugDescription)")
            case .outsideModel(let why):
                outsideModel += 1
                Issue.record("kipvs accepts a line the model cannot read (\(why)): \(line.debugDescription)")
            }
        }
        // The mutations reach both outcomes in numbers, so the comparison means something.
        #expect(accepted > 1000)
        #expect(refused > 5000)
        #expect(outsideModel == 0)
    }

    /// The lines that were half-applied before: `#` inside a word was taken as a comment.
    @Test(arguments: [
        "-a -t 10.0.0.1:80 -r 10.244.1.5:8080 -m# -w 5 -x 100",
        "-a -t 10.0.0.1:80 -r 10.244.1.5:8080 -m -w 5# -x 100",
        "-A -t 10.0.0.1:80#web -s rr",
        "-A -t 10.0.0.1:80 -s rr -p 60#",
        "-a -t 10.0.0.1:80 -r 10.244.1.5:8080 -m --weight=5#x",
    ])
    func hashInsideAWordIsRefused(line: String) {
        guard case .failure(let error) = RuleParser.parse(line) else {
            Issue.record("accepted: \(line)")
            return
        }
        #expect(error.line == 1)
        #expect(error.message.contains("#"), "\(error)")
        #expect(!IpvsadmModel.read(line).isRule, "ipvsadm reads a rule from \(line)")
    }

    /// A word that starts with `#` starts a comment, after a space or a tab or at the start of a line.
    @Test func commentsStartAtAWord() throws {
        let text = "# saved\n-A -t 10.0.0.1:80 -s rr #web\n-A -t 10.0.0.2:80\t#\t-s rr\n#-C\n"
        let rules = try RuleParser.parse(text).get()
        #expect(rules.map(\.line) == [2, 3])
        #expect(rules.map(\.action) == [
            .operation(.addVirtualServer(VirtualServer(key: SampleTable.tcp("10.0.0.1", 80), scheduler: "rr"))),
            .operation(.addVirtualServer(VirtualServer(key: SampleTable.tcp("10.0.0.2", 80), scheduler: "wlc"))),
        ])
    }

    /// Orders in which ipvsadm reads an option against a service it does not know yet, and empty names.
    @Test(arguments: [
        ("-A -f 7 -M 64 -6 -p", "must follow the service address and -6"),
        ("-A -M 64 -t [2001:db8::1]:443 -p", "must follow the service address"),
        ("-D -6 -f 7", "-6 must follow the firewall mark"),
        ("-a -r 10.244.1.5 -t 10.0.0.1:80 -m", "without a port must follow the service address"),
        ("-d -r 10.244.1.5 -t 10.0.0.1:80", "without a port must follow the service address"),
        // ipvsadm reads an empty name as its default (wlc) or as none.
        ("-A -t 10.0.0.1:80 --scheduler=", "empty scheduler name"),
        ("-A -t 10.0.0.1:80 -p --pe=", "empty persistence engine name"),
    ])
    func doubtfulReadingsAreRefused(line: String, fragment: String) {
        guard case .failure(let error) = RuleParser.parse(line) else {
            Issue.record("accepted: \(line)")
            return
        }
        #expect(error.message.contains(fragment), "\(error)")
    }
}

// MARK: - What a rule means, compared field by field

/// A rule as ipvsadm hands it to the kernel, reduced to what both readers can express.
struct Meaning: Equatable, CustomStringConvertible {
    var command: Character
    var service = ""
    var scheduler = ""
    var engine: String?
    var persistence: UInt32?
    var netmask: UInt32?
    var onePacket = false
    var real = ""
    var forwarding: ForwardingMethod?
    var weight: Int64?
    var upper: Int64?
    var lower: Int64?

    var description: String {
        "\(command) \(service) sched=\(scheduler) pe=\(engine ?? "-") p=\(persistence.map(String.init) ?? "-") M=\(netmask.map(String.init) ?? "-")"
            + " o=\(onePacket) r=\(real) fwd=\(forwarding.map { "\($0)" } ?? "-") w=\(weight ?? -1) x=\(upper ?? -1) y=\(lower ?? -1)"
    }

    static func service(_ key: VirtualServerKey) -> String {
        switch key {
        case .service(let proto, let address, let port): "\(proto) \(address) \(port)"
        case .firewallMark(let family, let mark): "fwm \(family) \(mark)"
        }
    }

    init(command: Character) { self.command = command }

    init(_ action: RuleAction) {
        switch action {
        case .flush:
            self.init(command: "C")
        case .operation(let operation):
            switch operation {
            case .addVirtualServer(let server), .updateVirtualServer(let server):
                if case .addVirtualServer = operation { self.init(command: "A") } else { self.init(command: "E") }
                service = Self.service(server.key)
                scheduler = server.scheduler
                engine = server.persistenceEngine
                persistence = server.isPersistent ? server.timeout : nil
                netmask = server.netmask
                onePacket = server.flags.contains(.onePacket)
            case .deleteVirtualServer(let key):
                self.init(command: "D")
                service = Self.service(key)
            case .addRealServer(let key, let real), .updateRealServer(let key, let real):
                if case .addRealServer = operation { self.init(command: "a") } else { self.init(command: "e") }
                service = Self.service(key)
                self.real = "\(real.key.address) \(real.key.port)"
                forwarding = real.forwarding
                weight = Int64(real.weight)
                upper = Int64(real.upperThreshold)
                lower = Int64(real.lowerThreshold)
            case .deleteRealServer(let key, let realKey):
                self.init(command: "d")
                service = Self.service(key)
                real = "\(realKey.address) \(realKey.port)"
            }
        }
    }
}

// MARK: - ipvsadm, as a model

/// How ipvsadm 1.31 reads one line of `ipvsadm -R` input, for numeric addresses and ports. Every
/// `ipvsadm` word is dropped (config_stream.c). kipvs' one addition: a word that starts with `#`
/// and the rest of the line are a comment (ipvsadm means to drop them, but its check looks only
/// at the separator after each word, so it passes them on and refuses the line).
enum IpvsadmModel {
    enum Outcome {
        case rule(Meaning)
        case empty
        case refused(String)
        /// Names or options the model does not follow; kipvs must refuse these.
        case outsideModel(String)

        var isRule: Bool { if case .rule = self { true } else { false } }
    }

    private struct Refusal: Error {
        let outcome: Outcome
        static func refused(_ why: String) -> Refusal { Refusal(outcome: .refused(why)) }
        static func outside(_ why: String) -> Refusal { Refusal(outcome: .outsideModel(why)) }
    }

    private enum Argument { case none, required, optional }

    /// popt's table in ipvsadm.c, for the options the base lines use.
    private static let options: [(short: Character?, long: String, argument: Argument)] = [
        ("A", "add-service", .none), ("E", "edit-service", .none), ("D", "delete-service", .none),
        ("a", "add-server", .none), ("e", "edit-server", .none), ("d", "delete-server", .none),
        ("C", "clear", .none), ("t", "tcp-service", .required), ("u", "udp-service", .required),
        ("f", "fwmark-service", .required), ("6", "ipv6", .none), ("s", "scheduler", .required),
        ("p", "persistent", .optional), ("M", "netmask", .required), ("o", "ops", .none),
        ("r", "real-server", .required), ("m", "masquerading", .none), ("g", "gatewaying", .none),
        ("i", "ipip", .none), ("w", "weight", .required), ("x", "u-threshold", .required),
        ("y", "l-threshold", .required), (nil, "pe", .required),
    ]

    /// ipvsadm options kipvs also reads, which the model leaves out.
    private static let unmodelled: Set<String> = ["b", "sched-flags", "tun-type", "sctp-service"]

    private struct State {
        var command: Character?
        var set: Set<String> = []
        var proto = "TCP"
        var family: IPAddress.Family = .inet
        var address: IPAddress?
        var port: UInt16 = 0
        var fwmark: UInt32 = 0
        var netmask: UInt32?
        var scheduler = ""
        var engine = ""
        var persistence: UInt32?
        var onePacket = false
        var real: (IPAddress, UInt16)?
        var forwarding = ForwardingMethod.directRoute
        var weight: Int64 = 1
        var upper: Int64 = 0
        var lower: Int64 = 0

        /// ipvsadm's `set_option`: each option once.
        mutating func once(_ name: String) throws(Refusal) {
            guard set.insert(name).inserted else { throw .refused("multiple \(name) options") }
        }
    }

    static func read(_ line: String) -> Outcome {
        var words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
        if let comment = words.firstIndex(where: { $0.hasPrefix("#") }) { words.removeSubrange(comment...) }
        words.removeAll { $0 == "ipvsadm" }
        if words.isEmpty { return .empty }
        do {
            return .rule(try meaning(try parse(words)))
        } catch {
            return error.outcome
        }
    }

    /// popt: long options exact, `--name=value`; short options bundle, a value may be attached;
    /// an optional value is the next word unless it starts with `-`; a bare word is left over.
    private static func parse(_ words: [String]) throws(Refusal) -> State {
        var state = State()
        var index = 0
        func next() -> String? {
            guard index < words.count else { return nil }
            defer { index += 1 }
            return words[index]
        }
        while let word = next() {
            if word == "--" {
                if index < words.count { throw .refused("unexpected argument") }
                break
            }
            if word.hasPrefix("--") {
                let body = word.dropFirst(2)
                let name = String(body.prefix { $0 != "=" })
                let attached = body.contains("=") ? String(body.drop { $0 != "=" }.dropFirst()) : nil
                if unmodelled.contains(name) { throw .outside("--\(name)") }
                guard let option = options.first(where: { $0.long == name }) else { throw .refused("unknown option --\(name)") }
                let value: String?
                switch option.argument {
                case .none:
                    if attached != nil { throw .refused("--\(name) takes no value") }
                    value = nil
                case .required:
                    guard let given = attached ?? next() else { throw .refused("--\(name) needs a value") }
                    value = given
                case .optional:
                    if let attached { value = attached } else if index < words.count, !words[index].hasPrefix("-") { value = next() } else { value = nil }
                }
                try apply(option.short ?? "P", value, &state)
                continue
            }
            guard word.hasPrefix("-"), word.count > 1 else { throw .refused("unexpected argument \(word)") }
            var rest = Substring(word.dropFirst())
            while let c = rest.first {
                rest = rest.dropFirst()
                if unmodelled.contains(String(c)) { throw .outside("-\(c)") }
                guard let option = options.first(where: { $0.short == c }) else { throw .refused("unknown option -\(c)") }
                switch option.argument {
                case .none:
                    try apply(c, nil, &state)
                    continue
                case .required:
                    let value = rest.isEmpty ? next() : String(rest)
                    guard let value else { throw .refused("-\(c) needs a value") }
                    try apply(c, value, &state)
                case .optional:
                    var value: String? = rest.isEmpty ? nil : String(rest)
                    if value == nil, index < words.count, !words[index].hasPrefix("-") { value = next() }
                    try apply(c, value, &state)
                }
                rest = ""
            }
        }
        return state
    }

    /// One option, as `parse_options` handles it; the first must be a command.
    private static func apply(_ option: Character, _ value: String?, _ s: inout State) throws(Refusal) {
        let commands: Set<Character> = ["A", "E", "D", "a", "e", "d", "C"]
        if commands.contains(option) {
            guard s.command == nil else { throw .refused("multiple commands") }
            s.command = option
            return
        }
        guard s.command != nil else { throw .refused("the first option is not a command") }
        switch option {
        case "t", "u":
            try s.once("service")
            s.proto = option == "t" ? "TCP" : "UDP"
            let (address, port) = try service(value!)
            (s.address, s.family) = (address, address.family)
            if let port { s.port = port }
            if address.family == .inet6 { s.netmask = nil }  // parse_service sets 128
        case "f":
            try s.once("service")
            (s.family, s.proto) = (.inet, "TCP")
            guard let mark = strtol(value!), mark > 0, mark <= Int64(UInt32.max) else { throw .refused("invalid fwmark") }
            s.fwmark = UInt32(mark)
        case "6":
            guard s.fwmark != 0 else { throw .refused("-6 used before -f") }
            (s.family, s.netmask) = (.inet6, nil)  // 128
        case "s":
            try s.once("scheduler")
            guard value!.count < 16 else { throw .outside("a scheduler name strncpy cuts") }
            s.scheduler = value!
        case "p":
            try s.once("persistent")
            guard let value else {
                s.persistence = 360
                return
            }
            guard let seconds = number(value, in: 1...2_678_400) else { throw .refused("invalid timeout") }
            s.persistence = UInt32(seconds)
        case "M":
            try s.once("netmask")
            if s.family != .inet6 {
                guard let mask = inetAton(value!) else { throw .outside("a netmask that is not an address") }
                s.netmask = mask
            } else {
                let bits = atoi(value!)
                guard (1...128).contains(bits) else { throw .refused("illegal ipv6 netmask") }
                s.netmask = UInt32(bits)
            }
        case "P":
            try s.once("pe")
            guard value!.count < 16 else { throw .outside("an engine name strncpy cuts") }
            s.engine = value!
        case "o":
            try s.once("ops")
            s.onePacket = true
        case "r":
            try s.once("server")
            let (address, port) = try service(value!)
            s.real = (address, port ?? s.port)
        case "m", "g", "i":
            try s.once("forward")
            s.forwarding = option == "m" ? .masquerade : option == "g" ? .directRoute : .tunnel
        case "w":
            try s.once("weight")
            guard let weight = number(value!, in: 0...Int64(Int32.max)) else { throw .refused("illegal weight") }
            s.weight = weight
        case "x":
            try s.once("u_threshold")
            guard let upper = number(value!, in: 0...Int64(Int32.max)) else { throw .refused("illegal u_threshold") }
            s.upper = upper
        case "y":
            try s.once("l_threshold")
            guard let lower = number(value!, in: 0...Int64(Int32.max)) else { throw .refused("illegal l_threshold") }
            s.lower = lower
        default:
            throw .outside("-\(option)")
        }
    }

    /// `generic_opt_check`'s table and `process_options`' checks, then the rule.
    private static func meaning(_ s: State) throws(Refusal) -> Meaning {
        guard let command = s.command else { throw .refused("no command") }
        let serviceOptions: Set<String> = ["scheduler", "persistent", "netmask", "ops", "pe"]
        let realOptions: Set<String> = ["forward", "weight", "u_threshold", "l_threshold"]
        var allowed: Set<String> = ["service"]
        switch command {
        case "A", "E": allowed.formUnion(serviceOptions)
        case "a", "e": allowed.formUnion(realOptions.union(["server"]))
        case "d": allowed.insert("server")
        case "C": allowed = []
        default: break
        }
        if let illegal = s.set.subtracting(allowed).first { throw .refused("illegal \(illegal) option") }
        var out = Meaning(command: command)
        if command == "C" { return out }
        guard s.set.contains("service") else { throw .refused("service needed") }
        if "aed".contains(command), !s.set.contains("server") { throw .refused("server needed") }
        out.service = s.fwmark != 0 ? "fwm \(s.family) \(s.fwmark)" : "\(s.proto) \(s.address!) \(s.port)"
        switch command {
        case "A", "E":
            if s.fwmark == 0, s.port == 0, s.persistence == nil { throw .refused("zero port for a non-persistent service") }
            if s.onePacket, s.fwmark == 0, s.proto != "UDP" { throw .refused("one-packet only for UDP") }
            out.scheduler = s.scheduler.isEmpty ? "wlc" : s.scheduler
            out.engine = s.engine.isEmpty ? nil : s.engine
            out.persistence = s.persistence
            out.netmask = s.netmask ?? (s.family == .inet ? 0xffff_ffff : 128)
            out.onePacket = s.onePacket
        case "a", "e", "d":
            var (address, port) = s.real!
            // Direct routing and tunnelling keep the service port (not for firewall marks).
            if command != "d", s.fwmark == 0, s.forwarding != .masquerade { port = s.port }
            out.real = "\(address) \(port)"
            if command != "d" {
                out.forwarding = s.forwarding
                (out.weight, out.upper, out.lower) = (s.weight, s.upper, s.lower)
            }
        default:
            break
        }
        return out
    }

    /// `parse_service`: `[v6]:port`, a bare IPv6 address, or `v4[:port]`.
    private static func service(_ text: String) throws(Refusal) -> (IPAddress, UInt16?) {
        if !text.isEmpty, text.allSatisfy(\.isNumber) { throw .refused("digits only") }
        var buffer = Substring(text)
        var port: Substring?
        if buffer.first == "[" {
            buffer = buffer.dropFirst()
            guard let close = buffer.firstIndex(of: "]") else { throw .refused("no ]") }
            let after = buffer[buffer.index(after: close)...]
            guard after.first == ":" else { throw .refused("no : after ]") }
            port = after.dropFirst()
            buffer = buffer[..<close]
        }
        if buffer.contains(":"), let v6 = IPAddress(buffer), !v6.isIPv4 {
            return (v6, try port.map(portNumber))
        }
        if let colon = buffer.lastIndex(of: ":") {
            port = buffer[buffer.index(after: colon)...]
            buffer = buffer[..<colon]
        }
        guard let v4 = inetAton(String(buffer)) else { throw .outside("a host name") }
        return (IPAddress(family: .inet, high: UInt64(v4) << 32, low: 0), try port.map(portNumber))
    }

    private static func portNumber(_ text: Substring) throws(Refusal) -> UInt16 {
        guard let port = number(String(text), in: 0...65535) else { throw .outside("a service name") }
        return UInt16(port)
    }

    /// `string_to_number`: strtol base 10, all of the text, within the range.
    private static func number(_ text: String, in range: ClosedRange<Int64>) -> Int64? {
        guard let value = strtol(text), range.contains(value) else { return nil }
        return value
    }

    /// strtol over the whole text: an optional sign, decimal digits; nil when anything is left over.
    private static func strtol(_ text: String) -> Int64? {
        var digits = Substring(text)
        var negative = false
        if let sign = digits.first, sign == "+" || sign == "-" {
            negative = sign == "-"
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        guard digits.count < 19, let magnitude = Int64(digits) else { return nil }
        return negative ? -magnitude : magnitude
    }

    /// atoi: an optional sign and the digits that follow; 0 when there are none.
    private static func atoi(_ text: String) -> Int {
        var rest = Substring(text)
        var sign = 1
        if let first = rest.first, first == "+" || first == "-" {
            sign = first == "-" ? -1 : 1
            rest = rest.dropFirst()
        }
        let digits = rest.prefix { $0.isASCII && $0.isNumber }.prefix(9)
        return sign * (Int(digits) ?? 0)
    }

    /// glibc's inet_aton: one to four parts, each decimal, octal (leading 0) or hex (0x); the last
    /// part fills the bytes that remain. Host order.
    static func inetAton(_ text: String) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...4).contains(parts.count) else { return nil }
        var values: [UInt64] = []
        for part in parts {
            var digits = Substring(part)
            var radix = 10
            if digits.hasPrefix("0x") || digits.hasPrefix("0X") {
                radix = 16
                digits = digits.dropFirst(2)
                if digits.isEmpty { values.append(0); continue }
            } else if digits.hasPrefix("0"), digits.count > 1 {
                radix = 8
                digits = digits.dropFirst()
            }
            guard !digits.isEmpty, digits.count <= 11, let value = UInt64(digits, radix: radix) else { return nil }
            values.append(value)
        }
        let last = values.removeLast()
        guard values.allSatisfy({ $0 <= 255 }), last < (UInt64(1) << (8 * (4 - values.count))) else { return nil }
        var result: UInt64 = 0
        for (i, value) in values.enumerated() { result |= value << (8 * (3 - i)) }
        return UInt32(result | last)
    }
}
