import IPVS
import Netlink

/// Which conntrack entries to delete: flows of `protocol` to `originalDestination:originalPort`
/// whose reply comes from none of `keepReplySources`. A virtual server that lost a real server, or
/// got its first one, keeps only the flows its current real servers answer.
public struct ConntrackFilter: Hashable, Sendable, CustomStringConvertible {
    public var `protocol`: IPProtocol
    public var originalDestination: IPAddress
    public var originalPort: UInt16
    public var keepReplySources: Set<RealServerKey>

    public init(protocol: IPProtocol = .udp, originalDestination: IPAddress, originalPort: UInt16,
                keepReplySources: Set<RealServerKey> = []) {
        self.protocol = `protocol`
        self.originalDestination = originalDestination
        self.originalPort = originalPort
        self.keepReplySources = keepReplySources
    }

    public func matches(_ entry: ConntrackEntry) -> Bool {
        entry.original.protocolNumber == UInt8(truncatingIfNeeded: `protocol`.rawValue)
            && entry.original.destination == originalDestination
            && entry.original.destinationPort == originalPort
            && !keepReplySources.contains(entry.replySource)
    }

    public var description: String {
        let keep = keepReplySources.sorted().map(\.description).joined(separator: ",")
        return "\(`protocol`) \(Endpoint.format(originalDestination, originalPort)) keep [\(keep)]"
    }
}

/// One direction of a tracked flow.
public struct ConntrackTuple: Hashable, Sendable {
    public var source: IPAddress
    public var destination: IPAddress
    public var protocolNumber: UInt8
    public var sourcePort: UInt16
    public var destinationPort: UInt16

    public init(source: IPAddress, destination: IPAddress, protocolNumber: UInt8, sourcePort: UInt16, destinationPort: UInt16) {
        self.source = source
        self.destination = destination
        self.protocolNumber = protocolNumber
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
    }
}

/// A conntrack entry as a dump reports it: enough to match it and to delete exactly it.
public struct ConntrackEntry: Hashable, Sendable, CustomStringConvertible {
    public var original: ConntrackTuple
    public var reply: ConntrackTuple
    /// The kernel's id of the entry. A delete that carries it fails with ENOENT on an entry with
    /// another id: a newer entry of the same flow is left alone, unless it took the old one's memory
    /// (the id hashes the entry's address and original tuple).
    public var id: UInt32?
    /// The conntrack zone, absent for the default zone.
    public var zone: UInt16?

    public init(original: ConntrackTuple, reply: ConntrackTuple, id: UInt32? = nil, zone: UInt16? = nil) {
        self.original = original
        self.reply = reply
        self.id = id
        self.zone = zone
    }

    public var family: IPAddress.Family { original.destination.family }

    /// Who answers the flow: after IPVS or NAT rewrote it, the real server.
    public var replySource: RealServerKey { RealServerKey(address: reply.source, port: reply.sourcePort) }

    public var description: String {
        "proto \(original.protocolNumber) \(Endpoint.format(original.source, original.sourcePort)) → "
            + "\(Endpoint.format(original.destination, original.destinationPort)), reply from \(replySource)"
    }
}

/// The kernel's conntrack table as plain values. `KernelConntrack` talks to the kernel over
/// ctnetlink; `FakeConntrack` keeps a list.
public protocol ConntrackHandle: AnyObject {
    /// Every entry of `family` and `protocol`.
    func entries(family: IPAddress.Family, protocol: IPProtocol) throws -> [ConntrackEntry]
    /// Deletes every entry any filter matches; returns how many it deleted. Entries that expire
    /// meanwhile are not counted and are no error.
    func deleteEntries(matching filters: [ConntrackFilter]) throws -> Int
}

/// Filters indexed by what an entry's original direction must carry, so each dumped entry costs
/// one lookup however many filters there are.
struct ConntrackFilterIndex {
    struct Key: Hashable {
        var protocolNumber: UInt8
        var destination: IPAddress
        var port: UInt16
    }

    private var keep: [Key: Set<RealServerKey>] = [:]
    /// The (family, protocol) pairs worth a dump.
    private(set) var dumps: [(family: IPAddress.Family, protocol: IPProtocol)] = []

    init(_ filters: [ConntrackFilter]) {
        for filter in filters {
            let key = Key(protocolNumber: UInt8(truncatingIfNeeded: filter.protocol.rawValue),
                          destination: filter.originalDestination, port: filter.originalPort)
            // Two filters for one destination: an entry goes when either would delete it.
            keep[key] = keep[key].map { $0.intersection(filter.keepReplySources) } ?? filter.keepReplySources
            if !dumps.contains(where: { $0.family == filter.originalDestination.family && $0.protocol == filter.protocol }) {
                dumps.append((filter.originalDestination.family, filter.protocol))
            }
        }
        dumps.sort { ($0.family.rawValue, $0.protocol.rawValue) < ($1.family.rawValue, $1.protocol.rawValue) }
    }

    var isEmpty: Bool { keep.isEmpty }

    func matches(_ entry: ConntrackEntry) -> Bool {
        let key = Key(protocolNumber: entry.original.protocolNumber, destination: entry.original.destination,
                      port: entry.original.destinationPort)
        guard let kept = keep[key] else { return false }
        return !kept.contains(entry.replySource)
    }
}

/// ctnetlink numbers (`<linux/netfilter/nfnetlink.h>`, `<linux/netfilter/nfnetlink_conntrack.h>`),
/// and the requests and replies of the conntrack table.
enum ConntrackWire {
    static let netlinkProtocol: Int32 = 12  // NETLINK_NETFILTER
    static let subsystem: UInt16 = 1  // NFNL_SUBSYS_CTNETLINK
    static let messageNew: UInt16 = 0  // IPCTNL_MSG_CT_NEW: what a dump answers with
    static let messageGet: UInt16 = 1  // IPCTNL_MSG_CT_GET
    static let messageDelete: UInt16 = 2  // IPCTNL_MSG_CT_DELETE

    static let tupleOriginal = 1  // CTA_TUPLE_ORIG
    static let tupleReply = 2  // CTA_TUPLE_REPLY
    static let id = 12  // CTA_ID
    static let zone = 18  // CTA_ZONE
    static let filter = 25  // CTA_FILTER

    static let tupleIP = 1  // CTA_TUPLE_IP
    static let tupleProto = 2  // CTA_TUPLE_PROTO

    static let ipV4Source = 1  // CTA_IP_V4_SRC
    static let ipV4Destination = 2  // CTA_IP_V4_DST
    static let ipV6Source = 3  // CTA_IP_V6_SRC
    static let ipV6Destination = 4  // CTA_IP_V6_DST

    static let protoNumber = 1  // CTA_PROTO_NUM
    static let protoSourcePort = 2  // CTA_PROTO_SRC_PORT
    static let protoDestinationPort = 3  // CTA_PROTO_DST_PORT

    static let filterOriginalFlags = 1  // CTA_FILTER_ORIG_FLAGS
    /// CTA_FILTER_F_CTA_PROTO_NUM: the kernel keeps the filter bits in nf_internals.h, not in uapi.
    static let filterProtoNumber: UInt32 = 1 << 3

    static func messageType(_ message: UInt16) -> UInt16 { subsystem << 8 | message }

    /// `struct nfgenmsg`: family, version NFNETLINK_V0, resource id 0.
    static func header(family: IPAddress.Family) -> [UInt8] { [UInt8(family.rawValue), 0, 0, 0] }

    /// Dumps the entries of one family and protocol. The kernel filters by both (6.1 has CTA_FILTER
    /// for dumps); a kernel without it ignores the attribute and sends all, which `decode` sorts out.
    static func encodeDump(family: IPAddress.Family, protocol: IPProtocol, sequence: UInt32, into batch: MessageBatch) {
        batch.begin(type: messageType(messageGet), flags: NetlinkFlags.request | NetlinkFlags.dump, sequence: sequence,
                    familyHeader: header(family: family))
        batch.beginNest(tupleOriginal)
        batch.beginNest(tupleProto)
        batch.put(protoNumber, u8: UInt8(truncatingIfNeeded: `protocol`.rawValue))
        batch.endNest()
        batch.endNest()
        // Only the protocol is filtered in the kernel: 6.1 compares IPv6 addresses of a filter inverted.
        batch.beginNest(filter)
        batch.put(filterOriginalFlags, u32: filterProtoNumber)
        batch.endNest()
        batch.end()
    }

    /// Deletes one entry by its original tuple, and by its id when the dump gave one.
    static func encodeDelete(_ entry: ConntrackEntry, flags: Int32, sequence: UInt32, into batch: MessageBatch) {
        batch.begin(type: messageType(messageDelete), flags: flags, sequence: sequence, familyHeader: header(family: entry.family))
        batch.beginNest(tupleOriginal)
        putTuple(entry.original, into: batch)
        batch.endNest()
        // Without CTA_ZONE the kernel looks the tuple up in the default zone.
        if let zone = entry.zone { batch.put(Self.zone, be16: zone) }
        if let id = entry.id { batch.put(Self.id, u32: id.bigEndian) }
        batch.end()
    }

    private static func putTuple(_ tuple: ConntrackTuple, into batch: MessageBatch) {
        let v4 = tuple.source.isIPv4
        batch.beginNest(tupleIP)
        batch.put(v4 ? ipV4Source : ipV6Source, high: tuple.source.high, low: tuple.source.low, count: v4 ? 4 : 16)
        batch.put(v4 ? ipV4Destination : ipV6Destination, high: tuple.destination.high, low: tuple.destination.low,
                  count: v4 ? 4 : 16)
        batch.endNest()
        batch.beginNest(tupleProto)
        batch.put(protoNumber, u8: tuple.protocolNumber)
        batch.put(protoSourcePort, be16: tuple.sourcePort)
        batch.put(protoDestinationPort, be16: tuple.destinationPort)
        batch.endNest()
    }

    /// One entry of a dump, or nil for anything else (other message types, other families, tuples without ports).
    static func decode(_ message: NetlinkMessage, family: IPAddress.Family? = nil) -> ConntrackEntry? {
        guard message.type == messageType(messageNew), message.payloadCount >= 4,
              let entryFamily = IPAddress.Family(rawValue: UInt16(message.byte(at: 0))),
              family == nil || entryFamily == family
        else { return nil }
        let attributes = message.attributes(from: 4)
        guard let original = attributes.nested(tupleOriginal).flatMap({ decodeTuple($0, family: entryFamily) }),
              let reply = attributes.nested(tupleReply).flatMap({ decodeTuple($0, family: entryFamily) })
        else { return nil }
        return ConntrackEntry(original: original, reply: reply, id: attributes.u32(id).map { UInt32(bigEndian: $0) },
                              zone: attributes.be16(zone))
    }

    private static func decodeTuple(_ tuple: Attributes, family: IPAddress.Family) -> ConntrackTuple? {
        let v4 = family == .inet
        guard let ip = tuple.nested(tupleIP), let proto = tuple.nested(tupleProto),
              let source = ip.bytes(v4 ? ipV4Source : ipV6Source).flatMap({ IPAddress(family: family, bytes: $0) }),
              let destination = ip.bytes(v4 ? ipV4Destination : ipV6Destination).flatMap({ IPAddress(family: family, bytes: $0) }),
              let number = proto.u8(protoNumber)
        else { return nil }
        // ICMP and protocols without ports carry none; such entries never match a filter.
        guard let sourcePort = proto.be16(protoSourcePort), let destinationPort = proto.be16(protoDestinationPort) else { return nil }
        return ConntrackTuple(source: source, destination: destination, protocolNumber: number, sourcePort: sourcePort,
                              destinationPort: destinationPort)
    }
}

/// The kernel's conntrack table over ctnetlink (`NETLINK_NETFILTER`). Not thread-safe.
public final class KernelConntrack: ConntrackHandle {
    public let connection: NetlinkConnection
    public var batchLimit = 64 * 1024

    /// Fails with EPROTONOSUPPORT where the kernel has no nfnetlink; a kernel without
    /// `nf_conntrack_netlink` answers the first request with EINVAL or EOPNOTSUPP.
    public init() throws {
        connection = try NetlinkConnection(protocol: ConntrackWire.netlinkProtocol, receiveBuffer: 4 << 20, sendBuffer: 1 << 20)
    }

    public func entries(family: IPAddress.Family, protocol: IPProtocol) throws -> [ConntrackEntry] {
        try dump(family: family, protocol: `protocol`) { _ in true }
    }

    private func dump(family: IPAddress.Family, protocol: IPProtocol, keep: (ConntrackEntry) -> Bool) throws -> [ConntrackEntry] {
        var out: [ConntrackEntry] = []
        let number = UInt8(truncatingIfNeeded: `protocol`.rawValue)
        try connection.dump(operation: "list \(`protocol`) conntrack entries (\(family == .inet ? "IPv4" : "IPv6"))", build: { batch, seq in
            ConntrackWire.encodeDump(family: family, protocol: `protocol`, sequence: seq, into: batch)
        }) { message in
            if let entry = ConntrackWire.decode(message, family: family), entry.original.protocolNumber == number, keep(entry) {
                out.append(entry)
            }
        }
        return out
    }

    public func deleteEntries(matching filters: [ConntrackFilter]) throws -> Int {
        let index = ConntrackFilterIndex(filters)
        if index.isEmpty { return 0 }
        var doomed: [ConntrackEntry] = []
        for (family, proto) in index.dumps {
            doomed += try dump(family: family, protocol: proto, keep: index.matches)
        }
        return try delete(doomed)
    }

    /// Deletes these entries (from a dump), batched; returns how many the kernel deleted.
    public func delete(_ entries: [ConntrackEntry]) throws -> Int {
        let failures = try connection.perform(
            count: entries.count, batchLimit: batchLimit,
            operation: { "delete conntrack entry \(entries[$0])" },
            encode: { i, batch, seq, flags in ConntrackWire.encodeDelete(entries[i], flags: flags, sequence: seq, into: batch) })
        // ENOENT: the entry expired since the dump, or its tuple now names a newer entry (the id differs).
        if let first = failures.sorted(by: { $0.key < $1.key }).first(where: { $0.value.errno != .noSuchFileOrDirectory }) {
            throw first.value
        }
        return entries.count - failures.count
    }
}

/// A conntrack table in memory, for tests: `deleteEntries` removes what the filters match.
public final class FakeConntrack: ConntrackHandle {
    public var table: [ConntrackEntry]
    /// Every filter list passed to `deleteEntries`, in order.
    public private(set) var deleteRequests: [[ConntrackFilter]] = []
    /// Makes the next `deleteEntries` throw this instead of deleting.
    public var failure: NetlinkError?

    public init(_ table: [ConntrackEntry] = []) {
        self.table = table
    }

    public func entries(family: IPAddress.Family, protocol: IPProtocol) -> [ConntrackEntry] {
        table.filter { $0.family == family && $0.original.protocolNumber == UInt8(truncatingIfNeeded: `protocol`.rawValue) }
    }

    public func deleteEntries(matching filters: [ConntrackFilter]) throws -> Int {
        deleteRequests.append(filters)
        if let failure {
            self.failure = nil
            throw failure
        }
        let index = ConntrackFilterIndex(filters)
        let before = table.count
        table.removeAll(where: index.matches)
        return before - table.count
    }
}
