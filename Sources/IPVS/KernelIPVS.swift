import Netlink

/// The kernel's IPVS table over generic netlink.
public final class KernelIPVS: IPVSHandle {
    public let connection: NetlinkConnection
    public let family: UInt16
    public var ackMode: NetlinkConnection.AckMode = .lastOfBatch
    public var batchLimit = 64 * 1024

    /// Opens a socket and resolves the IPVS family; `.unavailable` when the kernel has none.
    /// The receive buffer must hold every ack of one send (about 800 bytes each).
    public init(receiveBuffer: Int = 8 << 20) throws {
        do {
            connection = try NetlinkConnection(protocol: NetlinkProtocol.generic, receiveBuffer: receiveBuffer)
            family = try GenericNetlink.resolve(Wire.familyName, on: connection)
        } catch let error as NetlinkError where error.errno == .noSuchFileOrDirectory {
            throw IPVSError(kind: .unavailable, underlying: error)
        } catch let error as NetlinkError {
            throw IPVSError.classify(error, for: nil)
        }
    }

    /// Every virtual server; throws if any reply cannot be read, naming it, rather than leave out
    /// a virtual server the kernel has (a sync would then add it again, EEXIST, every time).
    public func virtualServers() throws -> [VirtualServerStatus] {
        let operation = "list virtual servers"
        var replies = DumpReplies<VirtualServerStatus>(nested: Wire.Top.service, what: "virtual server")
        try wrap {
            try connection.dump(operation: operation, build: { batch, seq in
                IPVSCodec.encodeDumpServices(family: family, sequence: seq, into: batch)
            }) { message in
                // Another tool's AH or ESP service, say: kipvs never makes one, so it is passed over.
                if IPVSCodec.hasUnmodelledProtocol(message.genericAttributes) { return }
                replies.add(message, IPVSCodec.decodeService(message.genericAttributes))
            }
        }
        return try replies.values(operation: operation)
    }

    public func realServers(of key: VirtualServerKey) throws -> [RealServerStatus] {
        let operation = "list real servers of \(key)"
        var replies = DumpReplies<RealServerStatus>(nested: Wire.Top.dest, what: "real server")
        try wrap {
            try connection.dump(operation: operation, build: { batch, seq in
                IPVSCodec.encodeDumpDests(of: key, family: family, sequence: seq, into: batch)
            }) { message in
                replies.add(message, IPVSCodec.decodeDest(message.genericAttributes, serviceFamily: key.family))
            }
        }
        return try replies.values(operation: operation)
    }

    public func apply(_ operations: [IPVSOperation]) throws -> [Int: IPVSError] {
        let failures = try wrap {
            try connection.perform(
                count: operations.count, ackMode: ackMode, batchLimit: batchLimit,
                operation: { operations[$0].description },
                encode: { index, batch, seq, flags in
                    IPVSCodec.encode(operations[index], family: family, flags: flags, sequence: seq, into: batch)
                })
        }
        return failures.reduce(into: [:]) { $0[$1.key] = IPVSError.classify($1.value, for: operations[$1.key]) }
    }

    public func flush() throws {
        try wrap {
            _ = try connection.request(operation: "flush") { batch, seq in
                IPVSCodec.encodeBare(Wire.Command.flush, family: family, sequence: seq, into: batch)
            }
        }
    }

    public func timeouts() throws -> Timeouts {
        let operation = "get timeouts"
        let replies = try wrap {
            try connection.request(operation: operation) { batch, seq in
                IPVSCodec.encodeBare(Wire.Command.getConfig, family: family, sequence: seq, into: batch)
            }
        }
        let a = replies.first?.genericAttributes
        guard let tcp = a?.u32(Wire.Top.timeoutTCP), let tcpFin = a?.u32(Wire.Top.timeoutTCPFin), let udp = a?.u32(Wire.Top.timeoutUDP) else {
            throw DumpReplies<Timeouts>.unreadable(operation, "\(replies.isEmpty ? "no reply" : "a reply without the three timeouts")")
        }
        return Timeouts(tcp: tcp, tcpFin: tcpFin, udp: udp)
    }

    public func setTimeouts(_ timeouts: Timeouts) throws {
        try wrap {
            _ = try connection.request(operation: "set timeouts") { batch, seq in
                IPVSCodec.encodeSetTimeouts(timeouts, family: family, sequence: seq, into: batch)
            }
        }
    }

    public func info() throws -> IPVSInfo {
        let replies = try wrap {
            try connection.request(operation: "get IPVS info") { batch, seq in
                IPVSCodec.encodeBare(Wire.Command.getInfo, family: family, sequence: seq, into: batch)
            }
        }
        let a = replies.first?.genericAttributes
        guard let version = a?.u32(Wire.Info.version), let size = a?.u32(Wire.Info.connTabSize) else {
            throw DumpReplies<IPVSInfo>.unreadable("get IPVS info", replies.isEmpty ? "no reply" : "a reply without version and table size")
        }
        return IPVSInfo(version: version, connectionTableSize: size)
    }

    /// Kernel and socket errors of whole-table calls, classified.
    private func wrap<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as NetlinkError {
            throw IPVSError.classify(error, for: nil)
        }
    }
}

/// The values of a dump, and the replies among them that could not be read.
struct DumpReplies<Value> {
    /// The attribute a reply nests its object in.
    let nested: Int
    /// `virtual server`, for messages.
    let what: String
    private(set) var decoded: [Value] = []
    private var unreadable: [String] = []
    private var count = 0

    init(nested: Int, what: String) {
        self.nested = nested
        self.what = what
    }

    /// Adds a reply and what it decoded to (nil: nothing).
    mutating func add(_ message: NetlinkMessage, _ value: Value?) {
        count += 1
        if let value {
            decoded.append(value)
        } else {
            unreadable.append("reply \(count): \(Self.shape(of: message, nested: nested))")
        }
    }

    /// Every value, or an error naming the replies that could not be read (after the dump is
    /// drained, so that the socket holds nothing of it).
    func values(operation: String) throws -> [Value] {
        guard let first = unreadable.first else { return decoded }
        let more = unreadable.count > 1 ? " (and \(unreadable.count - 1) more)" : ""
        throw Self.unreadable(operation, "\(unreadable.count) of \(count) replies are no \(what) kipvs can read: \(first)\(more)")
    }

    /// A reply that does not say what it must: EBADMSG, with what was wrong.
    static func unreadable(_ operation: String, _ detail: String) -> IPVSError {
        IPVSError(kind: .other, underlying: NetlinkError(errno: .badMessage, operation: "\(operation): \(detail)"))
    }

    /// `attributes 1 2 3 6 7` of the nested object, or what the reply holds instead.
    static func shape(of message: NetlinkMessage, nested: Int) -> String {
        let top = message.genericAttributes
        guard let inner = top.nested(nested) else {
            return "no nested attribute \(nested); attributes \(top.entries.map { String($0.type & 0x3fff) }.joined(separator: " "))"
        }
        let types = inner.entries.map { String($0.type & 0x3fff) }
        return "attributes \(types.isEmpty ? "none" : types.joined(separator: " ")) in nested attribute \(nested), \(message.payloadCount) bytes"
    }
}
