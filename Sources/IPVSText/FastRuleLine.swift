import IPVS

/// The line shapes `ipvsadm -S -n` writes, read straight from bytes without building strings:
/// restoring a saved table of 100,000s of lines is dominated by them.
///
/// `-A|-E|-D` with `-t|-u|--sctp-service ADDR:PORT`, `-s NAME`, `-p SECONDS`; `-a|-e|-d` with a
/// service, `-r ADDR[:PORT]`, `-m|-g|-i`, `-w WEIGHT`; IPv4 only, single spaces. Anything else, and
/// anything doubtful, returns nil and goes to the general parser, which owns every error message.
/// A unit test checks both paths agree on every line this one accepts.
enum FastRuleLine {
    private enum Command { case addService, editService, deleteService, addServer, editServer, deleteServer }

    private struct Fields {
        var proto: IPProtocol?
        var service: (IPAddress, UInt16)?
        var scheduler: String?
        var timeout: UInt32?
        var real: (IPAddress, UInt16?)?
        var forwarding: ForwardingMethod?
        var weight: Int32?
    }

    static func parse(_ line: ArraySlice<UInt8>) -> RuleAction? {
        // Only plain printable ASCII: tabs, comments and anything else take the general path.
        guard !line.isEmpty, line.allSatisfy({ $0 >= 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "#") }) else { return nil }
        var words = Words(line)
        guard let commandWord = words.next(), let command = command(commandWord) else { return nil }
        var f = Fields()
        while let word = words.next() {
            guard readOption(word, &words, &f) else { return nil }
        }
        return build(command, f)
    }

    /// The words of a line, split at single spaces (two spaces make an empty word), read in place.
    private struct Words {
        let line: ArraySlice<UInt8>
        var at: Int

        init(_ line: ArraySlice<UInt8>) {
            self.line = line
            at = line.startIndex
        }

        mutating func next() -> ArraySlice<UInt8>? {
            guard at <= line.endIndex else { return nil }
            let end = line[at...].firstIndex(of: UInt8(ascii: " ")) ?? line.endIndex
            defer { at = end + 1 }
            return line[at..<end]
        }
    }

    private static func command(_ w: ArraySlice<UInt8>) -> Command? {
        guard w.count == 2, w.first == UInt8(ascii: "-") else { return nil }
        switch w.last {
        case UInt8(ascii: "A"): return .addService
        case UInt8(ascii: "E"): return .editService
        case UInt8(ascii: "D"): return .deleteService
        case UInt8(ascii: "a"): return .addServer
        case UInt8(ascii: "e"): return .editServer
        case UInt8(ascii: "d"): return .deleteServer
        default: return nil
        }
    }

    /// Reads one option (and its value) into `f`; false for anything unknown, repeated or doubtful.
    private static func readOption(_ word: ArraySlice<UInt8>, _ rest: inout Words, _ f: inout Fields) -> Bool {
        func service(_ proto: IPProtocol) -> Bool {
            guard f.proto == nil, let value = rest.next(), let (address, port) = endpoint(value), let port else { return false }
            f.proto = proto
            f.service = (address, port)
            return true
        }
        func forwarding(_ method: ForwardingMethod) -> Bool {
            guard f.forwarding == nil else { return false }
            f.forwarding = method
            return true
        }
        if word.elementsEqual("--sctp-service".utf8) { return service(.sctp) }
        guard word.count == 2, word.first == UInt8(ascii: "-") else { return false }
        switch word.last! {
        case UInt8(ascii: "t"): return service(.tcp)
        case UInt8(ascii: "u"): return service(.udp)
        case UInt8(ascii: "s"):
            guard f.scheduler == nil, let value = rest.next(), (1...15).contains(value.count),
                  value.allSatisfy({ $0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z") })
            else { return false }
            f.scheduler = String(decoding: value, as: UTF8.self)
        case UInt8(ascii: "p"):
            guard f.timeout == nil, let value = rest.next(), let seconds = decimal(value), (1...2_678_400).contains(seconds)
            else { return false }
            f.timeout = UInt32(seconds)
        case UInt8(ascii: "r"):
            // A port-less real server before the service: the general path refuses it.
            guard f.real == nil, let value = rest.next(), let endpoint = endpoint(value), endpoint.1 != nil || f.proto != nil
            else { return false }
            f.real = endpoint
        case UInt8(ascii: "m"): return forwarding(.masquerade)
        case UInt8(ascii: "g"): return forwarding(.directRoute)
        case UInt8(ascii: "i"): return forwarding(.tunnel)
        case UInt8(ascii: "w"):
            guard f.weight == nil, let value = rest.next(), let weight = decimal(value), weight <= UInt64(Int32.max)
            else { return false }
            f.weight = Int32(weight)
        default: return false
        }
        return true
    }

    private static func build(_ command: Command, _ f: Fields) -> RuleAction? {
        guard let proto = f.proto, let (address, port) = f.service else { return nil }
        let key = VirtualServerKey.service(proto, address, port)
        switch command {
        case .addService, .editService:
            guard f.real == nil, f.forwarding == nil, f.weight == nil, port != 0 || f.timeout != nil else { return nil }
            let server = VirtualServer(key: key, scheduler: f.scheduler ?? "wlc", flags: f.timeout == nil ? [] : .persistent,
                                       timeout: f.timeout ?? 0)
            return .operation(command == .addService ? .addVirtualServer(server) : .updateVirtualServer(server))
        case .deleteService:
            guard f.scheduler == nil, f.timeout == nil, f.real == nil, f.forwarding == nil, f.weight == nil else { return nil }
            return .operation(.deleteVirtualServer(key))
        case .addServer, .editServer, .deleteServer:
            guard f.scheduler == nil, f.timeout == nil, let (realAddress, realPort) = f.real else { return nil }
            if command == .deleteServer {
                guard f.forwarding == nil, f.weight == nil else { return nil }
                return .operation(.deleteRealServer(key, RealServerKey(address: realAddress, port: realPort ?? port)))
            }
            let method = f.forwarding ?? .directRoute
            // Direct routing and tunnelling cannot rewrite the port: the service's is used.
            let real = RealServer(key: RealServerKey(address: realAddress, port: method == .masquerade ? realPort ?? port : port),
                                  forwarding: method, weight: f.weight ?? 1)
            return .operation(command == .addServer ? .addRealServer(key, real) : .updateRealServer(key, real))
        }
    }

    /// `1.2.3.4` or `1.2.3.4:80`.
    private static func endpoint(_ w: ArraySlice<UInt8>) -> (IPAddress, UInt16?)? {
        guard let colon = w.firstIndex(of: UInt8(ascii: ":")) else {
            return IPAddress.parseIPv4(w).map { (IPAddress(family: .inet, high: UInt64($0) << 32, low: 0), nil) }
        }
        guard let v4 = IPAddress.parseIPv4(w[..<colon]), let port = decimal(w[(colon + 1)...]), port <= 65535 else { return nil }
        return (IPAddress(family: .inet, high: UInt64(v4) << 32, low: 0), UInt16(port))
    }

    /// Up to 10 decimal digits; nil for anything else.
    private static func decimal(_ w: ArraySlice<UInt8>) -> UInt64? {
        guard (1...10).contains(w.count) else { return nil }
        var value: UInt64 = 0
        for c in w {
            guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + UInt64(c - UInt8(ascii: "0"))
        }
        return value
    }
}
