import Netlink

/// IPVS requests to bytes and replies to values.
public enum IPVSCodec {
    static func command(of operation: IPVSOperation) -> UInt8 {
        switch operation {
        case .addVirtualServer: Wire.Command.newService
        case .updateVirtualServer: Wire.Command.setService
        case .deleteVirtualServer: Wire.Command.delService
        case .addRealServer: Wire.Command.newDest
        case .updateRealServer: Wire.Command.setDest
        case .deleteRealServer: Wire.Command.delDest
        }
    }

    /// Writes one complete request for `operation`.
    public static func encode(_ operation: IPVSOperation, family: UInt16, flags: Int32, sequence: UInt32, into batch: MessageBatch) {
        batch.beginGeneric(family: family, flags: flags, sequence: sequence, command: command(of: operation))
        switch operation {
        case .addVirtualServer(let server), .updateVirtualServer(let server):
            putService(server, into: batch)
        case .deleteVirtualServer(let key):
            putServiceKey(key, into: batch)
        case .addRealServer(let key, let real), .updateRealServer(let key, let real):
            putServiceKey(key, into: batch)
            putDest(real, into: batch)
        case .deleteRealServer(let key, let realKey):
            putServiceKey(key, into: batch)
            batch.beginNest(Wire.Top.dest)
            putDestKey(realKey, into: batch)
            batch.endNest()
        }
        batch.end()
    }

    static func putKeyAttributes(_ key: VirtualServerKey, into batch: MessageBatch) {
        batch.put(Wire.Service.af, u16: key.family.rawValue)
        switch key {
        case .service(let proto, let address, let port):
            batch.put(Wire.Service.proto, u16: proto.rawValue)
            batch.put(Wire.Service.addr, high: address.high, low: address.low, count: 16)
            batch.put(Wire.Service.port, be16: port)
        case .firewallMark(_, let mark):
            batch.put(Wire.Service.fwmark, u32: mark)
        }
    }

    static func putServiceKey(_ key: VirtualServerKey, into batch: MessageBatch) {
        batch.beginNest(Wire.Top.service)
        putKeyAttributes(key, into: batch)
        batch.endNest()
    }

    static func putService(_ server: VirtualServer, into batch: MessageBatch) {
        batch.beginNest(Wire.Top.service)
        putKeyAttributes(server.key, into: batch)
        batch.put(Wire.Service.schedName, string: server.scheduler)
        if let engine = server.persistenceEngine { batch.put(Wire.Service.peName, string: engine) }
        // Mask all ones: the kernel applies only the masked bits, and SET merges under the mask.
        batch.put(Wire.Service.flags, bytes: le32(server.flags.rawValue) + le32(0xffff_ffff))
        batch.put(Wire.Service.timeout, u32: server.timeout)
        // IPv4 netmask travels in network order; IPv6 sends a host-order prefix length.
        batch.put(Wire.Service.netmask, u32: server.key.family == .inet ? server.netmask.bigEndian : server.netmask)
        batch.endNest()
    }

    static func putDestKey(_ key: RealServerKey, into batch: MessageBatch) {
        batch.put(Wire.Dest.addr, high: key.address.high, low: key.address.low, count: 16)
        batch.put(Wire.Dest.port, be16: key.port)
    }

    static func putDest(_ real: RealServer, into batch: MessageBatch) {
        batch.beginNest(Wire.Top.dest)
        putDestKey(real.key, into: batch)
        batch.put(Wire.Dest.fwdMethod, u32: real.forwarding.rawValue)
        batch.put(Wire.Dest.weight, u32: UInt32(bitPattern: real.weight))
        batch.put(Wire.Dest.upperThreshold, u32: real.upperThreshold)
        batch.put(Wire.Dest.lowerThreshold, u32: real.lowerThreshold)
        // Explicit, so a destination's family never depends on the service's.
        batch.put(Wire.Dest.addrFamily, u16: real.key.address.family.rawValue)
        batch.endNest()
    }

    public static func encodeDumpServices(family: UInt16, sequence: UInt32, into batch: MessageBatch) {
        batch.beginGeneric(family: family, flags: NetlinkFlags.request | NetlinkFlags.dump, sequence: sequence,
                           command: Wire.Command.getService)
        batch.end()
    }

    public static func encodeDumpDests(of key: VirtualServerKey, family: UInt16, sequence: UInt32, into batch: MessageBatch) {
        batch.beginGeneric(family: family, flags: NetlinkFlags.request | NetlinkFlags.dump, sequence: sequence,
                           command: Wire.Command.getDest)
        putServiceKey(key, into: batch)
        batch.end()
    }

    /// A request that carries no attributes (FLUSH, GET_INFO, GET_CONFIG).
    public static func encodeBare(_ command: UInt8, family: UInt16, sequence: UInt32, into batch: MessageBatch) {
        batch.beginGeneric(family: family, flags: NetlinkFlags.request | NetlinkFlags.ack, sequence: sequence, command: command)
        batch.end()
    }

    public static func encodeSetTimeouts(_ t: Timeouts, family: UInt16, sequence: UInt32, into batch: MessageBatch) {
        batch.beginGeneric(family: family, flags: NetlinkFlags.request | NetlinkFlags.ack, sequence: sequence,
                           command: Wire.Command.setConfig)
        batch.put(Wire.Top.timeoutTCP, u32: t.tcp)
        batch.put(Wire.Top.timeoutTCPFin, u32: t.tcpFin)
        batch.put(Wire.Top.timeoutUDP, u32: t.udp)
        batch.end()
    }

    static func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }

    // MARK: - Replies

    /// Whether a GET_SERVICE reply is an address virtual server of a protocol other than TCP, UDP
    /// and SCTP (IPVS also balances AH and ESP): well formed, but nothing kipvs models or owns.
    public static func hasUnmodelledProtocol(_ attributes: Attributes) -> Bool {
        guard let s = attributes.nested(Wire.Top.service), s.u32(Wire.Service.fwmark) == nil,
              let p = s.u16(Wire.Service.proto) else { return false }
        return IPProtocol(rawValue: p) == nil
    }

    /// A virtual server from a GET_SERVICE reply; `nil` for a reply this code cannot read.
    public static func decodeService(_ attributes: Attributes) -> VirtualServerStatus? {
        guard let s = attributes.nested(Wire.Top.service),
              let af = s.u16(Wire.Service.af), let family = IPAddress.Family(rawValue: af)
        else { return nil }
        let key: VirtualServerKey
        if let mark = s.u32(Wire.Service.fwmark) {
            key = .firewallMark(family, mark)
        } else {
            guard let p = s.u16(Wire.Service.proto), let proto = IPProtocol(rawValue: p),
                  let raw = s.bytes(Wire.Service.addr), let address = IPAddress(family: family, bytes: raw),
                  let port = s.be16(Wire.Service.port)
            else { return nil }
            key = .service(proto, address, port)
        }
        let flags = s.u32(Wire.Service.flags) ?? 0  // struct ip_vs_flags: the flags, then the mask
        let rawMask = s.u32(Wire.Service.netmask) ?? 0
        let server = VirtualServer(
            key: key,
            scheduler: s.string(Wire.Service.schedName) ?? "none",
            flags: VirtualServerFlags(rawValue: flags).subtracting(.hashed),  // always set by the kernel
            timeout: s.u32(Wire.Service.timeout) ?? 0,
            netmask: family == .inet ? UInt32(bigEndian: rawMask) : rawMask,
            persistenceEngine: s.string(Wire.Service.peName))
        return VirtualServerStatus(server: server, statistics: decodeStats(s, stats64: Wire.Service.stats64, stats: Wire.Service.stats))
    }

    /// A real server from a GET_DEST reply; `serviceFamily` is the fallback when ADDR_FAMILY is absent.
    public static func decodeDest(_ attributes: Attributes, serviceFamily: IPAddress.Family) -> RealServerStatus? {
        guard let d = attributes.nested(Wire.Top.dest) else { return nil }
        let family = d.u16(Wire.Dest.addrFamily).flatMap(IPAddress.Family.init(rawValue:)) ?? serviceFamily
        guard let raw = d.bytes(Wire.Dest.addr), let address = IPAddress(family: family, bytes: raw),
              let port = d.be16(Wire.Dest.port)
        else { return nil }
        let forwarding = ForwardingMethod(rawValue: (d.u32(Wire.Dest.fwdMethod) ?? 0) & 7) ?? .masquerade
        let server = RealServer(
            key: RealServerKey(address: address, port: port),
            forwarding: forwarding,
            weight: Int32(bitPattern: d.u32(Wire.Dest.weight) ?? 0),
            upperThreshold: d.u32(Wire.Dest.upperThreshold) ?? 0,
            lowerThreshold: d.u32(Wire.Dest.lowerThreshold) ?? 0)
        return RealServerStatus(
            server: server,
            activeConnections: d.u32(Wire.Dest.activeConns) ?? 0,
            inactiveConnections: d.u32(Wire.Dest.inactiveConns) ?? 0,
            persistentConnections: d.u32(Wire.Dest.persistConns) ?? 0,
            statistics: decodeStats(d, stats64: Wire.Dest.stats64, stats: Wire.Dest.stats))
    }

    /// Prefers the 64-bit counters; older kernels only send the 32-bit ones.
    static func decodeStats(_ a: Attributes, stats64: Int, stats: Int) -> Statistics {
        var out = Statistics()
        if let s = a.nested(stats64) {
            out.connections = s.u64(Wire.Stats.conns) ?? 0
            out.packetsIn = s.u64(Wire.Stats.inPackets) ?? 0
            out.packetsOut = s.u64(Wire.Stats.outPackets) ?? 0
            out.bytesIn = s.u64(Wire.Stats.inBytes) ?? 0
            out.bytesOut = s.u64(Wire.Stats.outBytes) ?? 0
            out.connectionsPerSecond = s.u64(Wire.Stats.cps) ?? 0
            out.packetsInPerSecond = s.u64(Wire.Stats.inPPS) ?? 0
            out.packetsOutPerSecond = s.u64(Wire.Stats.outPPS) ?? 0
            out.bytesInPerSecond = s.u64(Wire.Stats.inBPS) ?? 0
            out.bytesOutPerSecond = s.u64(Wire.Stats.outBPS) ?? 0
        } else if let s = a.nested(stats) {
            out.connections = UInt64(s.u32(Wire.Stats.conns) ?? 0)
            out.packetsIn = UInt64(s.u32(Wire.Stats.inPackets) ?? 0)
            out.packetsOut = UInt64(s.u32(Wire.Stats.outPackets) ?? 0)
            out.bytesIn = s.u64(Wire.Stats.inBytes) ?? 0  // 64-bit even in STATS
            out.bytesOut = s.u64(Wire.Stats.outBytes) ?? 0
            out.connectionsPerSecond = UInt64(s.u32(Wire.Stats.cps) ?? 0)
            out.packetsInPerSecond = UInt64(s.u32(Wire.Stats.inPPS) ?? 0)
            out.packetsOutPerSecond = UInt64(s.u32(Wire.Stats.outPPS) ?? 0)
            out.bytesInPerSecond = UInt64(s.u32(Wire.Stats.inBPS) ?? 0)
            out.bytesOutPerSecond = UInt64(s.u32(Wire.Stats.outBPS) ?? 0)
        }
        return out
    }
}
