/// Transport protocol of a virtual server.
public enum IPProtocol: UInt16, Sendable, CaseIterable, CustomStringConvertible {
    case tcp = 6
    case udp = 17
    case sctp = 132

    public var description: String {
        switch self {
        case .tcp: "TCP"
        case .udp: "UDP"
        case .sctp: "SCTP"
        }
    }
}

/// What identifies a virtual server in the kernel: protocol, address and port, or a firewall mark.
public enum VirtualServerKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    case service(IPProtocol, IPAddress, UInt16)
    case firewallMark(IPAddress.Family, UInt32)

    public var family: IPAddress.Family {
        switch self {
        case .service(_, let address, _): address.family
        case .firewallMark(let family, _): family
        }
    }

    /// `TCP  10.96.0.10:80`, `FWM  7`: how ipvsadm names it.
    public var description: String {
        switch self {
        case .service(let proto, let address, let port):
            "\(proto) \(Endpoint.format(address, port))"
        case .firewallMark(let family, let mark):
            family == .inet6 ? "FWM \(mark) IPv6" : "FWM \(mark)"
        }
    }

    private var sortKey: (Int, UInt16, IPAddress?, UInt32) {
        switch self {
        case .service(let p, let a, let port): (0, p.rawValue, a, UInt32(port))
        case .firewallMark(let f, let m): (1, f.rawValue, nil, m)
        }
    }

    public static func < (a: VirtualServerKey, b: VirtualServerKey) -> Bool {
        let x = a.sortKey, y = b.sortKey
        if x.0 != y.0 { return x.0 < y.0 }
        if x.1 != y.1 { return x.1 < y.1 }
        if let ax = x.2, let ay = y.2, ax != ay { return ax < ay }
        return x.3 < y.3
    }
}

public enum Endpoint {
    /// `10.0.0.1:80` or `[fd00::1]:80`.
    public static func format(_ address: IPAddress, _ port: UInt16) -> String {
        address.isIPv4 ? "\(address):\(port)" : "[\(address)]:\(port)"
    }
}

/// Virtual-server flags (`IP_VS_SVC_F_*`).
public struct VirtualServerFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let persistent = VirtualServerFlags(rawValue: 0x0001)
    /// Kernel-internal; always set in replies, never meaningful to a caller.
    public static let hashed = VirtualServerFlags(rawValue: 0x0002)
    public static let onePacket = VirtualServerFlags(rawValue: 0x0004)
    /// sh/mh: fall back to another real server when the chosen one is unavailable.
    public static let schedulerFallback = VirtualServerFlags(rawValue: 0x0008)
    /// sh/mh: hash the source port too.
    public static let schedulerPort = VirtualServerFlags(rawValue: 0x0010)
    public static let scheduler3 = VirtualServerFlags(rawValue: 0x0020)
}

/// A virtual server as written to and read from the kernel.
public struct VirtualServer: Hashable, Sendable {
    public var key: VirtualServerKey
    public var scheduler: String
    public var flags: VirtualServerFlags
    /// Persistence timeout in seconds (meaningful with `.persistent`).
    public var timeout: UInt32
    /// IPv4: the mask as a number (0xffffffff is /32). IPv6: the prefix length.
    public var netmask: UInt32
    public var persistenceEngine: String?

    public init(key: VirtualServerKey, scheduler: String = "wlc", flags: VirtualServerFlags = [],
                timeout: UInt32 = 0, netmask: UInt32? = nil, persistenceEngine: String? = nil) {
        self.key = key
        self.scheduler = scheduler
        self.flags = flags.subtracting(.hashed)
        self.timeout = timeout
        self.netmask = netmask ?? (key.family == .inet ? 0xffff_ffff : 128)
        self.persistenceEngine = persistenceEngine
    }

    public var isPersistent: Bool { flags.contains(.persistent) }
}

/// How IPVS forwards packets to a real server.
public enum ForwardingMethod: UInt32, Sendable, CaseIterable {
    case masquerade = 0
    case localNode = 1
    case tunnel = 2
    case directRoute = 3
    case bypass = 4

    /// ipvsadm's column text.
    public var name: String {
        switch self {
        case .masquerade: "Masq"
        case .localNode: "Local"
        case .tunnel: "Tunnel"
        case .directRoute: "Route"
        case .bypass: "Bypass"
        }
    }
}

/// What identifies a real server inside its virtual server.
public struct RealServerKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16

    public init(address: IPAddress, port: UInt16) {
        self.address = address
        self.port = port
    }

    public var description: String { Endpoint.format(address, port) }

    public static func < (a: RealServerKey, b: RealServerKey) -> Bool {
        a.address != b.address ? a.address < b.address : a.port < b.port
    }
}

/// A real server (IPVS destination) as written to and read from the kernel.
public struct RealServer: Hashable, Sendable {
    public var key: RealServerKey
    public var forwarding: ForwardingMethod
    /// 0 = quiescent: no new connections.
    public var weight: Int32
    /// 0 = unlimited.
    public var upperThreshold: UInt32
    public var lowerThreshold: UInt32

    public init(key: RealServerKey, forwarding: ForwardingMethod = .masquerade, weight: Int32 = 1,
                upperThreshold: UInt32 = 0, lowerThreshold: UInt32 = 0) {
        self.key = key
        self.forwarding = forwarding
        self.weight = weight
        self.upperThreshold = upperThreshold
        self.lowerThreshold = lowerThreshold
    }

    public init(address: IPAddress, port: UInt16, forwarding: ForwardingMethod = .masquerade, weight: Int32 = 1) {
        self.init(key: RealServerKey(address: address, port: port), forwarding: forwarding, weight: weight)
    }
}

/// Traffic counters (64-bit, from `IPVS_*_ATTR_STATS64`).
public struct Statistics: Hashable, Sendable {
    public var connections: UInt64 = 0
    public var packetsIn: UInt64 = 0
    public var packetsOut: UInt64 = 0
    public var bytesIn: UInt64 = 0
    public var bytesOut: UInt64 = 0
    public var connectionsPerSecond: UInt64 = 0
    public var packetsInPerSecond: UInt64 = 0
    public var packetsOutPerSecond: UInt64 = 0
    public var bytesInPerSecond: UInt64 = 0
    public var bytesOutPerSecond: UInt64 = 0

    public init() {}
}

/// A virtual server as the kernel reports it, with its counters.
public struct VirtualServerStatus: Hashable, Sendable {
    public var server: VirtualServer
    public var statistics: Statistics

    public init(server: VirtualServer, statistics: Statistics = Statistics()) {
        self.server = server
        self.statistics = statistics
    }
}

/// A real server as the kernel reports it, with its connection counts and counters.
public struct RealServerStatus: Hashable, Sendable {
    public var server: RealServer
    public var activeConnections: UInt32
    public var inactiveConnections: UInt32
    public var persistentConnections: UInt32
    public var statistics: Statistics

    public init(server: RealServer, activeConnections: UInt32 = 0, inactiveConnections: UInt32 = 0,
                persistentConnections: UInt32 = 0, statistics: Statistics = Statistics()) {
        self.server = server
        self.activeConnections = activeConnections
        self.inactiveConnections = inactiveConnections
        self.persistentConnections = persistentConnections
        self.statistics = statistics
    }
}

/// Connection timeouts in seconds (`ipvsadm --set`); 0 leaves a value unchanged when setting.
public struct Timeouts: Hashable, Sendable {
    public var tcp: UInt32
    public var tcpFin: UInt32
    public var udp: UInt32

    public init(tcp: UInt32, tcpFin: UInt32, udp: UInt32) {
        self.tcp = tcp
        self.tcpFin = tcpFin
        self.udp = udp
    }
}

/// `GET_INFO`: the IPVS version and connection table size.
public struct IPVSInfo: Hashable, Sendable {
    public var version: UInt32
    public var connectionTableSize: UInt32

    /// `1.2.1`
    public var versionString: String { "\(version >> 16).\((version >> 8) & 0xff).\(version & 0xff)" }
}

/// One change to the kernel's IPVS table.
public enum IPVSOperation: Hashable, Sendable, CustomStringConvertible {
    case addVirtualServer(VirtualServer)
    case updateVirtualServer(VirtualServer)
    case deleteVirtualServer(VirtualServerKey)
    case addRealServer(VirtualServerKey, RealServer)
    case updateRealServer(VirtualServerKey, RealServer)
    case deleteRealServer(VirtualServerKey, RealServerKey)

    public var description: String {
        switch self {
        case .addVirtualServer(let v): "add virtual server \(v.key)"
        case .updateVirtualServer(let v): "update virtual server \(v.key)"
        case .deleteVirtualServer(let k): "delete virtual server \(k)"
        case .addRealServer(let k, let r): "add real server \(r.key) to \(k)"
        case .updateRealServer(let k, let r): "update real server \(r.key) of \(k)"
        case .deleteRealServer(let k, let r): "delete real server \(r) from \(k)"
        }
    }
}
