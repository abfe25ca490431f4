import Netlink
#if canImport(Glibc)
import Glibc
#endif

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
        } catch let error as NetlinkError where error.errno == ENOENT {
            throw IPVSError(kind: .unavailable, underlying: error)
        } catch let error as NetlinkError {
            throw IPVSError.classify(error, for: nil)
        }
    }

    public func virtualServers() throws -> [VirtualServerStatus] {
        var out: [VirtualServerStatus] = []
        try wrap {
            try connection.dump(operation: "list virtual servers", build: { batch, seq in
                IPVSCodec.encodeDumpServices(family: family, sequence: seq, into: batch)
            }) { message in
                if let status = IPVSCodec.decodeService(message.genericAttributes) { out.append(status) }
            }
        }
        return out
    }

    public func realServers(of key: VirtualServerKey) throws -> [RealServerStatus] {
        var out: [RealServerStatus] = []
        try wrap {
            try connection.dump(operation: "list real servers of \(key)", build: { batch, seq in
                IPVSCodec.encodeDumpDests(of: key, family: family, sequence: seq, into: batch)
            }) { message in
                if let status = IPVSCodec.decodeDest(message.genericAttributes, serviceFamily: key.family) { out.append(status) }
            }
        }
        return out
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
        let replies = try wrap {
            try connection.request(operation: "get timeouts") { batch, seq in
                IPVSCodec.encodeBare(Wire.Command.getConfig, family: family, sequence: seq, into: batch)
            }
        }
        let a = replies.first?.genericAttributes
        return Timeouts(tcp: a?.u32(Wire.Top.timeoutTCP) ?? 0, tcpFin: a?.u32(Wire.Top.timeoutTCPFin) ?? 0,
                        udp: a?.u32(Wire.Top.timeoutUDP) ?? 0)
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
        return IPVSInfo(version: a?.u32(Wire.Info.version) ?? 0, connectionTableSize: a?.u32(Wire.Info.connTabSize) ?? 0)
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
