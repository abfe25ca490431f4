import Netlink

/// An in-memory IPVS table that answers as the kernel does, with the kernel's errnos classified
/// as `KernelIPVS` classifies them, and lists in the kernel's order: address virtual servers before
/// firewall marks (each in insertion order, one of the orders the kernel's hash may give), real
/// servers newest first. Held to the kernel's behaviour by IPVSTestKit's contract. For tests and dry runs.
public final class FakeIPVS: IPVSHandle {
    /// The schedulers a stock kernel can load.
    public static let schedulers: Set<String> = [
        "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos",
    ]
    /// The persistence engines a stock kernel can load.
    public static let persistenceEngines: Set<String> = ["sip"]

    /// Every operation passed to `apply`, in order, whether or not it succeeded.
    public private(set) var requested: [IPVSOperation] = []
    /// The operations that changed the table.
    public private(set) var applied: [IPVSOperation] = []
    /// The virtual servers whose real servers were listed, in order.
    public private(set) var realServerReads: [VirtualServerKey] = []
    /// Makes chosen operations fail with the returned errno before they touch the table.
    public var failure: ((IPVSOperation) -> Errno?)?

    private struct Entry {
        var status: VirtualServerStatus
        var realOrder: [RealServerKey] = []
        var reals: [RealServerKey: RealServerStatus] = [:]
    }

    private var order: [VirtualServerKey] = []
    private var entries: [VirtualServerKey: Entry] = [:]
    private var currentTimeouts = Timeouts(tcp: 900, tcpFin: 120, udp: 300)

    public init() {}

    /// Number of operations sent to the "kernel": what a test of an idle sync expects to be zero.
    public var writeCount: Int { requested.count }

    /// Sets a real server's connection counts, as traffic would.
    public func setConnections(active: UInt32, inactive: UInt32, of real: RealServerKey, in key: VirtualServerKey) {
        entries[key]?.reals[real]?.activeConnections = active
        entries[key]?.reals[real]?.inactiveConnections = inactive
    }

    /// The kernel dumps its address table, then its firewall-mark table.
    public func virtualServers() -> [VirtualServerStatus] {
        let marks = order.filter { if case .firewallMark = $0 { true } else { false } }
        let addresses = order.filter { if case .service = $0 { true } else { false } }
        return (addresses + marks).map { entries[$0]!.status }
    }

    /// Like the kernel, an unknown virtual server gives an empty list, not ESRCH. Newest first: the
    /// kernel puts each new real server at the head of its list.
    public func realServers(of key: VirtualServerKey) -> [RealServerStatus] {
        realServerReads.append(key)
        guard let entry = entries[key] else { return [] }
        return entry.realOrder.reversed().map { entry.reals[$0]! }
    }

    public func apply(_ operations: [IPVSOperation]) -> [Int: IPVSError] {
        var failures: [Int: IPVSError] = [:]
        for (index, operation) in operations.enumerated() {
            requested.append(operation)
            // The kernel handles each request of a batch on its own: a failure does not stop the rest.
            if let errno = failure?(operation) ?? perform(operation) {
                failures[index] = IPVSError.classify(NetlinkError(errno: errno, operation: operation.description),
                                                     for: operation)
            } else {
                applied.append(operation)
            }
        }
        return failures
    }

    public func flush() {
        order = []
        entries = [:]
    }

    public func timeouts() -> Timeouts { currentTimeouts }

    /// 0 leaves a value unchanged, as with `ipvsadm --set`.
    public func setTimeouts(_ timeouts: Timeouts) {
        if timeouts.tcp != 0 { currentTimeouts.tcp = timeouts.tcp }
        if timeouts.tcpFin != 0 { currentTimeouts.tcpFin = timeouts.tcpFin }
        if timeouts.udp != 0 { currentTimeouts.udp = timeouts.udp }
    }

    public func info() -> IPVSInfo {
        IPVSInfo(version: 0x01_02_01, connectionTableSize: 4096)
    }

    /// Applies one operation; the errno the kernel would answer, or nil.
    private func perform(_ operation: IPVSOperation) -> Errno? {
        switch operation {
        case .addVirtualServer(let server):
            guard entries[server.key] == nil else { return .fileExists }
            if let errno = check(server) { return errno }
            order.append(server.key)
            entries[server.key] = Entry(status: VirtualServerStatus(server: server))
        case .updateVirtualServer(let server):
            guard entries[server.key] != nil else { return .noSuchProcess }
            if let errno = check(server) { return errno }
            entries[server.key]!.status.server = server
        case .deleteVirtualServer(let key):
            guard entries.removeValue(forKey: key) != nil else { return .noSuchProcess }
            order.removeAll { $0 == key }
        case .addRealServer(let key, let real):
            // The kernel finds the service, checks the values, then looks for the destination.
            guard var entry = entries[key] else { return .noSuchProcess }
            if let errno = check(real, in: key) { return errno }
            guard entry.reals[real.key] == nil else { return .fileExists }
            guard Self.isUnicast(real.key.address) else { return .invalidArgument }
            entry.realOrder.append(real.key)
            entry.reals[real.key] = RealServerStatus(server: real)
            entries[key] = entry
        case .updateRealServer(let key, let real):
            guard entries[key] != nil else { return .noSuchProcess }
            if let errno = check(real, in: key) { return errno }
            guard entries[key]!.reals[real.key] != nil else { return .noSuchFileOrDirectory }
            entries[key]!.reals[real.key]!.server = real
        case .deleteRealServer(let key, let realKey):
            guard var entry = entries[key] else { return .noSuchProcess }
            guard entry.reals.removeValue(forKey: realKey) != nil else { return .noSuchFileOrDirectory }
            entry.realOrder.removeAll { $0 == realKey }
            entries[key] = entry
        }
        return nil
    }

    /// The kernel's checks on a service: scheduler and engine modules (ENOENT), IPv6 prefix length (EINVAL).
    private func check(_ server: VirtualServer) -> Errno? {
        // "none" is no module: a virtual server without a scheduler.
        guard server.scheduler == "none" || Self.schedulers.contains(server.scheduler) else { return .noSuchFileOrDirectory }
        if let engine = server.persistenceEngine, !engine.isEmpty, !Self.persistenceEngines.contains(engine) {
            return .noSuchFileOrDirectory
        }
        if server.key.family == .inet6, !(1...128).contains(server.netmask) { return .invalidArgument }
        return nil
    }

    /// The kernel's checks on a destination: family (EINVAL), then weight and thresholds (ERANGE).
    private func check(_ real: RealServer, in key: VirtualServerKey) -> Errno? {
        if real.key.address.family != key.family, real.forwarding != .tunnel { return .invalidArgument }
        if real.weight < 0 || real.lowerThreshold > real.upperThreshold { return .outOfRange }
        return nil
    }

    /// What the kernel takes for a new real server (`ip_vs_new_dest`): IPv4 unicast or local, so not
    /// 0.0.0.0, 255.255.255.255 or multicast (nor an interface's broadcast address, which the fake
    /// does not know); IPv6 unicast and not link-local (unless the host's own, which the fake has none of).
    static func isUnicast(_ address: IPAddress) -> Bool {
        switch address.family {
        case .inet:
            let v4 = UInt32(truncatingIfNeeded: address.high >> 32)
            return v4 != 0 && v4 != 0xffff_ffff && v4 >> 28 != 0xe
        case .inet6:
            let unspecified = address.high == 0 && address.low == 0
            let multicast = address.high >> 56 == 0xff
            let linkLocal = address.high >> 54 == 0x3fa  // fe80::/10
            return !unspecified && !multicast && !linkLocal
        }
    }
}
