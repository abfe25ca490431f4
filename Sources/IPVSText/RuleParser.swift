import IPVS

/// One line of an `ipvsadm -R` rules file.
public struct Rule: Hashable, Sendable {
    /// 1-based line number in the input.
    public let line: Int
    public let action: RuleAction

    public init(line: Int, action: RuleAction) {
        self.line = line
        self.action = action
    }
}

public enum RuleAction: Hashable, Sendable {
    case operation(IPVSOperation)
    /// `-C`: remove every virtual server.
    case flush
}

/// The first line that could not be read, and why.
public struct RuleParseError: Error, Hashable, Sendable, CustomStringConvertible {
    /// 1-based line number in the input.
    public let line: Int
    /// What is wrong, without the line number.
    public let message: String

    public init(line: Int, message: String) {
        self.line = line
        self.message = message
    }

    /// `line 7: port 70000 out of range 0…65535`
    public var description: String { "line \(line): \(message)" }
}

/// Reads rules in the syntax `ipvsadm -S` writes and `ipvsadm -R` reads, with ipvsadm's defaults:
///
/// - `-A`/`-E` without `-s` use `wlc`; `-E` replaces the whole service, so it resets what it omits.
/// - `-p` without a timeout means 360 seconds (libipvs' `IPVS_SVC_PERSISTENT_TIMEOUT`).
/// - A service port of 0 (or none) is allowed only for persistent services.
/// - `-a`/`-e` default to direct routing (`-g`) and weight 1; direct routing and tunnelling always
///   use the service's port; `-r` without a port means the service's port.
///
/// Unlike ipvsadm it reads numbers only: no host or service names. Blank lines, comments and a
/// leading `ipvsadm` word are ignored. A comment is a word that starts with `#` and the rest of
/// its line; a `#` inside a word is part of the word, so `-m#` is refused as ipvsadm refuses it,
/// never read as `-m` with the rest of the line dropped. Parsing stops at the first bad line.
public enum RuleParser {
    public static func parse(_ text: String) -> Result<[Rule], RuleParseError> {
        parse(Array(text.utf8))
    }

    /// Reads raw bytes, so that a file which is not UTF-8 gets a line number rather than a
    /// replacement character.
    public static func parse(_ bytes: [UInt8]) -> Result<[Rule], RuleParseError> {
        var rules: [Rule] = []
        rules.reserveCapacity(bytes.lazy.filter { $0 == UInt8(ascii: "\n") }.count + 1)
        do {
            try forEachRule(in: bytes) { rules.append($0) }
        } catch let error as RuleParseError {
            return .failure(error)
        } catch {
            preconditionFailure("the body does not throw")
        }
        return .success(rules)
    }

    /// Hands each rule to `body` as it is read, keeping none: a large file can be checked, then
    /// read again and applied, without a table of every rule in memory. Throws `RuleParseError` at
    /// the first bad line, or what `body` throws.
    public static func forEachRule(in bytes: [UInt8], _ body: (Rule) throws -> Void) throws {
        var start = bytes.startIndex
        var number = 0
        while start < bytes.endIndex || number == 0 {
            let end = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.endIndex
            let line = bytes[start..<end]
            number += 1
            start = end + 1
            if let action = FastRuleLine.parse(line) {
                try body(Rule(line: number, action: action))
                continue
            }
            let action: RuleAction?
            do throws(LineError) {
                action = try parseLine(line)
            } catch {
                throw RuleParseError(line: number, message: error.message)
            }
            if let action { try body(Rule(line: number, action: action)) }
        }
    }

    /// The general path: every option ipvsadm rule files use, with a message for anything wrong.
    static func parseLine(_ line: ArraySlice<UInt8>) throws(LineError) -> RuleAction? {
        var words = try Words.split(line)
        if words.first == "ipvsadm" { words.removeFirst() }
        guard let first = words.first else { return nil }
        let command = try Command.named(first)
        let options = try LineOptions.read(words.dropFirst(), for: command, spelledAs: first)
        return try action(command, options)
    }

    private static func action(_ command: Command, _ options: LineOptions) throws(LineError) -> RuleAction {
        switch command {
        case .flush:
            return .flush
        case .addService:
            return .operation(.addVirtualServer(try virtualServer(try serviceKey(options), options)))
        case .editService:
            return .operation(.updateVirtualServer(try virtualServer(try serviceKey(options), options)))
        case .deleteService:
            return .operation(.deleteVirtualServer(try serviceKey(options)))
        case .addServer:
            let key = try serviceKey(options)
            return .operation(.addRealServer(key, try realServer(of: key, options)))
        case .editServer:
            let key = try serviceKey(options)
            return .operation(.updateRealServer(key, try realServer(of: key, options)))
        case .deleteServer:
            let key = try serviceKey(options)
            return .operation(.deleteRealServer(key, try realServerKey(of: key, options)))
        }
    }
}

/// Why a line was rejected; `RuleParser.parse` adds the line number.
struct LineError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

// MARK: - Words

/// A line cut into words at spaces and tabs, everything from a word that starts with `#` on dropped.
private enum Words {
    static func split(_ line: ArraySlice<UInt8>) throws(LineError) -> [String] {
        let code = line[..<commentStart(line)]
        if let control = code.first(where: isControl) {
            throw LineError("unexpected control character 0x\(hex(control)); is this a text file?")
        }
        var words: [String] = []
        for bytes in code.split(whereSeparator: isSpace) {
            // Rule files are ASCII: decode that directly, and validate only what is not.
            if bytes.allSatisfy({ $0 < 0x80 }) {
                words.append(String(decoding: bytes, as: UTF8.self))
                continue
            }
            guard let word = String(validating: bytes, as: UTF8.self) else {
                throw LineError("not valid UTF-8 text; is this a text file?")
            }
            words.append(word)
        }
        return words
    }

    /// Where the comment starts: the first `#` at the start of the line or after a space or tab.
    static func commentStart(_ line: ArraySlice<UInt8>) -> ArraySlice<UInt8>.Index {
        var previous = UInt8(ascii: " ")
        for index in line.indices {
            let byte = line[index]
            if byte == UInt8(ascii: "#") && isSpace(previous) { return index }
            previous = byte
        }
        return line.endIndex
    }

    /// A word as it appears in a message: long ones shortened, so that garbage stays readable.
    static func quoted(_ word: some StringProtocol) -> String {
        word.count > 40 ? "\(word.prefix(40))…" : String(word)
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r")
    }

    private static func isControl(_ byte: UInt8) -> Bool {
        (byte < 0x20 || byte == 0x7f) && byte != UInt8(ascii: "\t") && byte != UInt8(ascii: "\r")
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = String(byte, radix: 16, uppercase: true)
        return digits.count == 1 ? "0" + digits : digits
    }
}

// MARK: - Commands and options

/// The ipvsadm commands a rules file may hold.
private enum Command: CaseIterable {
    case addService, editService, deleteService, addServer, editServer, deleteServer, flush

    var spellings: [String] {
        switch self {
        case .addService: ["-A", "--add-service"]
        case .editService: ["-E", "--edit-service"]
        case .deleteService: ["-D", "--delete-service"]
        case .addServer: ["-a", "--add-server"]
        case .editServer: ["-e", "--edit-server"]
        case .deleteServer: ["-d", "--delete-server"]
        case .flush: ["-C", "--clear"]
        }
    }

    /// ipvsadm's `commands_v_options` table, restricted to the options read here.
    var allowed: [Setting] {
        switch self {
        case .addService, .editService:
            [.service, .ipv6, .scheduler, .persistence, .netmask, .onePacket, .persistenceEngine, .schedulerFlags]
        case .deleteService: [.service, .ipv6]
        case .addServer, .editServer:
            [.service, .ipv6, .realServer, .forwarding, .weight, .upperThreshold, .lowerThreshold, .tunnelType]
        case .deleteServer: [.service, .ipv6, .realServer]
        case .flush: []
        }
    }

    var required: [Setting] {
        switch self {
        case .addService, .editService, .deleteService: [.service]
        case .addServer, .editServer, .deleteServer: [.service, .realServer]
        case .flush: []
        }
    }

    /// ipvsadm commands that change or show something other than the table.
    private static let otherCommands: Set<String> = [
        "-L", "-l", "--list", "-Z", "--zero", "-R", "--restore", "-S", "--save", "--set",
        "--start-daemon", "--stop-daemon", "-h", "--help", "-v", "--version",
    ]

    static func spelled(_ word: String) -> Command? { bySpelling[word] }

    private static let bySpelling: [String: Command] = Dictionary(
        uniqueKeysWithValues: allCases.flatMap { command in command.spellings.map { ($0, command) } })

    static func named(_ word: String) throws(LineError) -> Command {
        if let command = spelled(word) { return command }
        if otherCommands.contains(word) {
            throw LineError("command \(word) cannot appear in a rules file")
        }
        throw LineError("expected a command (-A, -E, -D, -a, -e, -d or -C), found \(Words.quoted(word))")
    }
}

/// What an option sets. Options that set the same thing exclude each other, as ipvsadm's
/// `set_option` does: `-t` and `-f` both set the service address, `-m` and `-g` the forwarding method.
private enum Setting: String {
    case service = "service address"
    case ipv6 = "IPv6 firewall mark"
    case scheduler
    case persistence
    case netmask
    case schedulerFlags = "scheduler flags"
    case onePacket = "one-packet scheduling"
    case persistenceEngine = "persistence engine"
    case realServer = "real server"
    case forwarding = "forwarding method"
    case weight
    case upperThreshold = "upper threshold"
    case lowerThreshold = "lower threshold"
    case tunnelType = "tunnel type"

    /// Why a line that needs this setting is incomplete.
    var missing: String {
        switch self {
        case .service: "missing service address (-t, -u, --sctp-service or -f)"
        case .realServer: "missing real server (-r)"
        default: "missing \(rawValue)"
        }
    }
}

private enum Option: CaseIterable {
    case tcpService, udpService, sctpService, fwmarkService, ipv6
    case scheduler, persistent, netmask, schedulerFlags, onePacket, persistenceEngine
    case realServer, masquerading, gatewaying, ipip, weight, upperThreshold, lowerThreshold, tunnelType

    enum Argument { case none, required, optional }

    var spellings: [String] {
        switch self {
        case .tcpService: ["-t", "--tcp-service"]
        case .udpService: ["-u", "--udp-service"]
        case .sctpService: ["--sctp-service"]
        case .fwmarkService: ["-f", "--fwmark-service"]
        case .ipv6: ["-6", "--ipv6"]
        case .scheduler: ["-s", "--scheduler"]
        case .persistent: ["-p", "--persistent"]
        case .netmask: ["-M", "--netmask"]
        case .schedulerFlags: ["-b", "--sched-flags"]
        case .onePacket: ["-o", "--ops"]
        case .persistenceEngine: ["--pe"]
        case .realServer: ["-r", "--real-server"]
        case .masquerading: ["-m", "--masquerading"]
        case .gatewaying: ["-g", "--gatewaying"]
        case .ipip: ["-i", "--ipip"]
        case .weight: ["-w", "--weight"]
        case .upperThreshold: ["-x", "--u-threshold"]
        case .lowerThreshold: ["-y", "--l-threshold"]
        case .tunnelType: ["--tun-type"]
        }
    }

    var argument: Argument {
        switch self {
        case .ipv6, .onePacket, .masquerading, .gatewaying, .ipip: .none
        // popt's optional argument: the next word, unless it starts with `-`.
        case .persistent: .optional
        default: .required
        }
    }

    var setting: Setting {
        switch self {
        case .tcpService, .udpService, .sctpService, .fwmarkService: .service
        case .ipv6: .ipv6
        case .scheduler: .scheduler
        case .persistent: .persistence
        case .netmask: .netmask
        case .schedulerFlags: .schedulerFlags
        case .onePacket: .onePacket
        case .persistenceEngine: .persistenceEngine
        case .realServer: .realServer
        case .masquerading, .gatewaying, .ipip: .forwarding
        case .weight: .weight
        case .upperThreshold: .upperThreshold
        case .lowerThreshold: .lowerThreshold
        case .tunnelType: .tunnelType
        }
    }

    static func spelled(_ word: String) -> Option? { bySpelling[word] }

    private static let bySpelling: [String: Option] = Dictionary(
        uniqueKeysWithValues: allCases.flatMap { option in option.spellings.map { ($0, option) } })
}

/// One option as written on the line.
private struct GivenOption {
    let option: Option
    /// `-w` or `--weight`, for messages.
    let spelling: String
    let value: String?

    /// The value of an option whose argument is required.
    var requiredValue: String { value ?? "" }
}

/// The options of one line, checked against the command: each allowed, none repeated, none missing.
private struct LineOptions {
    // A handful per line: a list beats hashing here, and restore parses 100,000s of lines.
    private var given: [(setting: Setting, option: GivenOption)] = []

    subscript(setting: Setting) -> GivenOption? { given.first { $0.setting == setting }?.option }

    static func read(_ words: ArraySlice<String>, for command: Command, spelledAs commandWord: String)
        throws(LineError) -> LineOptions
    {
        var options = LineOptions()
        var rest = words
        while let word = rest.popFirst() {
            let given = try readOption(word, from: &rest, commandWord: commandWord)
            let setting = given.option.setting
            guard command.allowed.contains(setting) else {
                throw LineError("\(given.spelling) is not allowed with \(commandWord)")
            }
            if let earlier = options[setting] {
                throw LineError("\(earlier.spelling) and \(given.spelling) both set the \(setting.rawValue)")
            }
            options.given.append((setting, given))
        }
        for setting in command.required where options[setting] == nil {
            throw LineError(setting.missing)
        }
        try options.checkOrder()
        return options
    }

    /// Whether `setting` was given before `other` (false when either is missing).
    func isBefore(_ setting: Setting, _ other: Setting) -> Bool {
        guard let a = position(setting), let b = position(other) else { return false }
        return a < b
    }

    private func position(_ setting: Setting) -> Int? { given.firstIndex { $0.setting == setting } }

    /// ipvsadm reads each option against what the line set before it, so in another order it
    /// reads another rule: `-6` before `-f` is refused, and `-M` before the address or `-6` is
    /// read as an IPv4 mask and then reset. Those orders are refused here.
    private func checkOrder() throws(LineError) {
        if let ipv6 = self[.ipv6], isBefore(.ipv6, .service) {
            throw LineError("\(ipv6.spelling) must follow the firewall mark (-f)")
        }
        if let mask = self[.netmask], isBefore(.netmask, .service) || isBefore(.netmask, .ipv6) {
            throw LineError("\(mask.spelling) must follow the service address and -6, which decide how the mask is read")
        }
    }

    /// One option and its value, which is either the next word or, for `--name=value`, attached.
    private static func readOption(_ word: String, from rest: inout ArraySlice<String>, commandWord: String)
        throws(LineError) -> GivenOption
    {
        guard word.hasPrefix("-"), word.count > 1 else {
            throw LineError("unexpected argument \(Words.quoted(word))")
        }
        var name = word
        var attached: String?
        if word.hasPrefix("--"), let equals = word.firstIndex(of: "=") {
            name = String(word[..<equals])
            attached = String(word[word.index(after: equals)...])
        }
        guard let option = Option.spelled(name) else {
            if Command.spelled(name) != nil {
                throw LineError("more than one command (\(commandWord) and \(name))")
            }
            throw LineError("unknown option \(Words.quoted(name))")
        }
        switch option.argument {
        case .none:
            if attached != nil { throw LineError("\(name) takes no value") }
            return GivenOption(option: option, spelling: name, value: nil)
        case .required:
            if let attached { return GivenOption(option: option, spelling: name, value: attached) }
            guard let next = rest.popFirst() else { throw LineError("\(name) needs a value") }
            return GivenOption(option: option, spelling: name, value: next)
        case .optional:
            if attached == nil, let next = rest.first, !next.hasPrefix("-") {
                rest.removeFirst()
                return GivenOption(option: option, spelling: name, value: next)
            }
            return GivenOption(option: option, spelling: name, value: attached)
        }
    }
}

// MARK: - Building operations

private extension RuleParser {
    /// ipvsadm's `DEF_SCHED`.
    static let defaultScheduler = "wlc"
    /// libipvs' `IPVS_SVC_PERSISTENT_TIMEOUT`, used by `-p` without a number. (The manual says 300.)
    static let defaultPersistenceTimeout: UInt32 = 360
    /// ipvsadm's `MAX_TIMEOUT`: 31 days.
    static let maximumPersistenceTimeout: UInt64 = 86400 * 31
    /// `IP_VS_SCHEDNAME_MAXLEN` less the NUL.
    static let maximumSchedulerNameLength = 15
    /// `IP_VS_PENAME_MAXLEN`.
    static let maximumEngineNameLength = 16

    static func serviceKey(_ options: LineOptions) throws(LineError) -> VirtualServerKey {
        guard let service = options[.service] else { throw LineError(Setting.service.missing) }
        let proto: IPProtocol
        switch service.option {
        case .fwmarkService:
            let mark = try number(service.requiredValue, in: 1...UInt64(UInt32.max), "firewall mark")
            return .firewallMark(options[.ipv6] == nil ? .inet : .inet6, UInt32(mark))
        case .udpService: proto = .udp
        case .sctpService: proto = .sctp
        default: proto = .tcp
        }
        if let ipv6 = options[.ipv6] {
            throw LineError("\(ipv6.spelling) is only for firewall-mark services (-f)")
        }
        let (address, port) = try endpoint(service.requiredValue)
        return .service(proto, address, port ?? 0)
    }

    static func virtualServer(_ key: VirtualServerKey, _ options: LineOptions) throws(LineError) -> VirtualServer {
        var scheduler = defaultScheduler
        if let given = options[.scheduler] { scheduler = try schedulerName(given.requiredValue) }
        var flags: VirtualServerFlags = []
        var timeout: UInt32 = 0
        if let given = options[.persistence] {
            flags.insert(.persistent)
            timeout = try persistenceTimeout(given.value)
        }
        if case .service(_, _, 0) = key, !flags.contains(.persistent) {
            throw LineError("port 0 (any port) needs a persistent service (-p)")
        }
        if options[.onePacket] != nil {
            if case .service(let proto, _, _) = key, proto != .udp {
                throw LineError("one-packet scheduling (-o) is only for UDP services")
            }
            flags.insert(.onePacket)
        }
        if let given = options[.schedulerFlags] {
            flags.formUnion(try schedulerFlags(given.requiredValue, scheduler: scheduler))
        }
        var netmask: UInt32?
        if let given = options[.netmask] { netmask = try persistenceNetmask(given.requiredValue, family: key.family) }
        var engine: String?
        if let given = options[.persistenceEngine] { engine = try engineName(given.requiredValue) }
        return VirtualServer(key: key, scheduler: scheduler, flags: flags, timeout: timeout, netmask: netmask,
                             persistenceEngine: engine)
    }

    static func realServer(of key: VirtualServerKey, _ options: LineOptions) throws(LineError) -> RealServer {
        let forwarding = forwardingMethod(options)
        if let given = options[.tunnelType] {
            guard forwarding == .tunnel else { throw LineError("\(given.spelling) needs tunnelling (-i)") }
            guard given.requiredValue == "ipip" else {
                throw LineError("tunnel type \(Words.quoted(given.requiredValue)) is not supported; only ipip is")
            }
        }
        var realKey = try realServerKey(of: key, options)
        // Direct routing and tunnelling cannot rewrite the port, so ipvsadm uses the service's.
        if case .service(_, _, let port) = key, forwarding == .directRoute || forwarding == .tunnel {
            realKey.port = port
        }
        if realKey.address.family != key.family && forwarding != .tunnel {
            throw LineError("real server \(realKey.address) and the service differ in address family;"
                + " only tunnelling (-i) allows that")
        }
        var real = RealServer(key: realKey, forwarding: forwarding)
        if let given = options[.weight] {
            real.weight = Int32(try number(given.requiredValue, in: 0...UInt64(Int32.max), "weight"))
        }
        if let given = options[.upperThreshold] {
            real.upperThreshold = UInt32(try number(given.requiredValue, in: 0...UInt64(Int32.max), "upper threshold"))
        }
        if let given = options[.lowerThreshold] {
            real.lowerThreshold = UInt32(try number(given.requiredValue, in: 0...UInt64(Int32.max), "lower threshold"))
        }
        return real
    }

    /// `-r` without a port means the service's port (0 for a firewall-mark service).
    static func realServerKey(of key: VirtualServerKey, _ options: LineOptions) throws(LineError) -> RealServerKey {
        guard let given = options[.realServer] else { throw LineError(Setting.realServer.missing) }
        let (address, port) = try endpoint(given.requiredValue)
        // ipvsadm gives a port-less real server the service port known when it reads -r.
        if port == nil, options.isBefore(.realServer, .service) {
            throw LineError("\(given.spelling) without a port must follow the service address, whose port it takes")
        }
        var servicePort: UInt16 = 0
        if case .service(_, _, let port) = key { servicePort = port }
        return RealServerKey(address: address, port: port ?? servicePort)
    }

    /// ipvsadm's default is direct routing (`-g`).
    static func forwardingMethod(_ options: LineOptions) -> ForwardingMethod {
        switch options[.forwarding]?.option {
        case .masquerading: .masquerade
        case .ipip: .tunnel
        default: .directRoute
        }
    }
}

// MARK: - Values

private extension RuleParser {
    /// `1.2.3.4`, `1.2.3.4:80`, `fd00::1` or `[fd00::1]:80`, as ipvsadm's `parse_service` reads them.
    static func endpoint(_ text: String) throws(LineError) -> (IPAddress, UInt16?) {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw LineError("missing ] in \(Words.quoted(text))") }
            let inside = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.first == ":" else { throw LineError("expected :port after ] in \(Words.quoted(text))") }
            guard let address = IPAddress(String(inside)), !address.isIPv4 else {
                throw LineError("invalid IPv6 address \(Words.quoted(inside))")
            }
            return (address, try port(rest.dropFirst()))
        }
        // One colon separates an IPv4 address from its port; an IPv6 address has at least two.
        let colons = text.utf8.lazy.filter { $0 == UInt8(ascii: ":") }.count
        if colons > 1, let address = IPAddress(text), !address.isIPv4 {
            return (address, nil)
        }
        guard colons == 1, let colon = text.utf8.firstIndex(of: UInt8(ascii: ":")) else {
            return (try ipv4Address(text[...], in: text), nil)
        }
        let address = try ipv4Address(text[..<colon], in: text)
        return (address, try port(text[text.utf8.index(after: colon)...]))
    }

    private static func ipv4Address(_ host: Substring, in text: String) throws(LineError) -> IPAddress {
        guard let address = IPAddress(host), address.isIPv4 else {
            let hint = host.contains(":") ? " (an IPv6 address with a port is written [address]:port)" : ""
            throw LineError("invalid address \(Words.quoted(text))\(hint)")
        }
        return address
    }

    /// Numeric ports only: ipvsadm would also look up names in /etc/services.
    static func port(_ text: Substring) throws(LineError) -> UInt16 {
        guard let value = decimal(text) else {
            if text.isEmpty { throw LineError("missing port after :") }
            if text.allSatisfy({ $0.isLetter || $0 == "-" }) {
                throw LineError("port \(Words.quoted(text)) is not a number (service names are not supported)")
            }
            throw LineError("invalid port \(Words.quoted(text))")
        }
        guard value <= UInt64(UInt16.max) else { throw LineError("port \(Words.quoted(text)) out of range 0…65535") }
        return UInt16(value)
    }

    static func persistenceTimeout(_ text: String?) throws(LineError) -> UInt32 {
        guard let text else { return defaultPersistenceTimeout }
        return UInt32(try number(text, in: 1...maximumPersistenceTimeout, "persistence timeout"))
    }

    /// A dotted mask for IPv4 services, a prefix length for IPv6 ones.
    static func persistenceNetmask(_ text: String, family: IPAddress.Family) throws(LineError) -> UInt32 {
        switch family {
        case .inet:
            guard let mask = IPAddress(text), mask.isIPv4 else {
                throw LineError("invalid netmask \(Words.quoted(text)); IPv4 services take a dotted mask such as 255.255.255.0")
            }
            return mask.bytes.reduce(0) { $0 << 8 | UInt32($1) }
        case .inet6:
            return UInt32(try number(text, in: 1...128, "IPv6 netmask (a prefix length)"))
        }
    }

    static func schedulerName(_ text: String) throws(LineError) -> String {
        // ipvsadm takes an empty name for its default, wlc: say so rather than guess.
        guard !text.isEmpty else { throw LineError("empty scheduler name") }
        guard text.utf8.count <= maximumSchedulerNameLength else {
            throw LineError("scheduler name \(Words.quoted(text)) is longer than \(maximumSchedulerNameLength) characters")
        }
        return text
    }

    static func engineName(_ text: String) throws(LineError) -> String {
        guard !text.isEmpty else { throw LineError("empty persistence engine name") }
        guard text.utf8.count <= maximumEngineNameLength else {
            throw LineError("persistence engine name \(Words.quoted(text)) is longer than \(maximumEngineNameLength) characters")
        }
        return text
    }

    /// ipvsadm's `parse_sched_flags`: comma-separated; the sh- and mh- names need their scheduler.
    static func schedulerFlags(_ text: String, scheduler: String) throws(LineError) -> VirtualServerFlags {
        let names = text.split(separator: ",")
        if names.isEmpty { throw LineError("no scheduler flags in \(Words.quoted(text))") }
        var flags: VirtualServerFlags = []
        for name in names {
            let (flag, needs): (VirtualServerFlags, String?) =
                switch name {
                case "flag-1": (.schedulerFallback, nil)
                case "flag-2": (.schedulerPort, nil)
                case "flag-3": (.scheduler3, nil)
                case "sh-fallback": (.schedulerFallback, "sh")
                case "sh-port": (.schedulerPort, "sh")
                case "mh-fallback": (.schedulerFallback, "mh")
                case "mh-port": (.schedulerPort, "mh")
                default: throw LineError("unknown scheduler flag \(Words.quoted(name))")
                }
            if let needs, needs != scheduler {
                throw LineError("scheduler flag \(name) needs the \(needs) scheduler, not \(Words.quoted(scheduler))")
            }
            flags.insert(flag)
        }
        return flags
    }

    /// A decimal number within `range`, named `what` in the message otherwise.
    static func number(_ text: String, in range: ClosedRange<UInt64>, _ what: String) throws(LineError) -> UInt64 {
        guard let value = decimal(text[...]), range.contains(value) else {
            throw LineError("\(what) must be \(range.lowerBound)…\(range.upperBound), not \(Words.quoted(text))")
        }
        return value
    }

    /// ASCII digits only (no sign, no spaces); values too large for 64 bits saturate, so that they
    /// fail the range check instead of trapping.
    static func decimal(_ text: Substring) -> UInt64? {
        guard !text.isEmpty else { return nil }
        var value: UInt64 = 0
        for byte in text.utf8 {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (shifted, overflowA) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflowB) = shifted.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            value = overflowA || overflowB ? .max : sum
        }
        return value
    }
}
