import IPVS

/// The desired state kept per Service, so that a change costs what it changes: each Service's part
/// (its virtual servers, virtual IPs and packet-path entries) is computed alone, and the whole is
/// their union. A change to one Service replaces its part and reports what the union lost and
/// gained.
///
/// Two Services claiming the same virtual server is the one case where a Service's part depends on
/// others (the first in name order wins). Such Services are "contested": a change to one of them,
/// or one that makes a new claim on a held key, needs `init` over all Services again.
public struct DesiredStateIndex: Sendable {
    public let node: NodeConfig
    /// The union of every Service's part. Its `warnings` are left empty: see `warnings`.
    public private(set) var state = DesiredState()
    private var parts: [ObjectName: DesiredState] = [:]
    private var markNames: [ObjectName: [String]] = [:]
    /// Which Service port holds each virtual server.
    private var owners: [VirtualServerKey: ServicePortName] = [:]
    private var contested: Set<ObjectName> = []
    // Entries two Services may share, counted.
    private var addressCounts: [IPAddress: Int] = [:]
    private var endpointCounts: [IPAddress: Int] = [:]
    private var healthCheckCounts: [UInt16: Int] = [:]
    private(set) var marks: FirewallMarkTable

    /// Every Service of `objects`, in name order; marks already handed out are kept.
    public init(_ objects: ClusterObjects, node: NodeConfig, marks: FirewallMarkTable = FirewallMarkTable()) {
        self.node = node
        self.marks = marks
        var built: [(ObjectName, DesiredState, [DesiredStateBuilder.InClusterServer])] = []
        for name in objects.serviceNames {
            guard let part = build(name, objects) else { continue }
            // Name order: what this Service claims, later ones find held.
            for (key, server) in part.state.virtualServers where owners[key] == nil { owners[key] = server.service }
            if !part.lostKeys.isEmpty {
                // The holder is contested too: were it to let a key go, the loser would take it.
                contested.insert(name)
                for key in part.lostKeys { if let owner = owners[key] { contested.insert(owner.object) } }
            }
            built.append((name, part.state, part.inClusterServers))
        }
        self.marks.keep(only: Set(built.flatMap { $0.2.map(\.markName) }))
        let assigned = self.marks.assign(built.flatMap { $0.2.map(\.markName) })
        for (name, part, servers) in built {
            let whole = DesiredStateBuilder.withMarks(part, servers, marks: assigned)
            markNames[name] = servers.map(\.markName)
            var delta = DesiredStateDelta()
            add(name, whole, into: &delta)
        }
    }

    /// Every Service's warnings, in name order.
    public var warnings: [DesiredState.Warning] {
        parts.keys.sorted().flatMap { parts[$0]!.warnings }
    }

    /// The part of one Service; nil when it has none.
    public func part(of service: ObjectName) -> DesiredState? { parts[service] }

    /// Recomputes one Service's part from `objects`. Returns nil, changing nothing, when the
    /// Service is contested or now claims a key another Service holds: then only a new `init`
    /// gives the right answer.
    public mutating func update(_ service: ObjectName, _ objects: ClusterObjects, into delta: inout DesiredStateDelta) -> Bool {
        guard !contested.contains(service) else { return false }
        let built = build(service, objects)
        if built?.lostKeys.isEmpty == false { return false }
        let old = parts[service]
        let oldNames = markNames[service] ?? []
        let newNames = built?.inClusterServers.map(\.markName) ?? []
        for name in Set(oldNames).subtracting(newNames) { marks.release(name) }
        let assigned = marks.assign(newNames)
        let new = built.map { DesiredStateBuilder.withMarks($0.state, $0.inClusterServers, marks: assigned) }
        guard old != new else { return true }
        if let old { remove(service, old, into: &delta) }
        markNames[service] = newNames.isEmpty ? nil : newNames
        if let new { add(service, new, into: &delta) }
        delta.services.insert(service)
        return true
    }

    private struct Built {
        var state: DesiredState
        var inClusterServers: [DesiredStateBuilder.InClusterServer]
        var lostKeys: Set<VirtualServerKey>
    }

    private func build(_ name: ObjectName, _ objects: ClusterObjects) -> Built? {
        guard let service = objects.services[name], !service.metadata.isForAnotherProxy else { return nil }
        let owners = owners
        var builder = DesiredStateBuilder(node: node) { key in
            guard let owner = owners[key], owner.object != name else { return nil }
            return owner
        }
        builder.add(service, slices: objects.slices(of: name))
        return Built(state: builder.state, inClusterServers: builder.inClusterServers, lostKeys: builder.lostKeys)
    }

    private mutating func add(_ service: ObjectName, _ part: DesiredState, into delta: inout DesiredStateDelta) {
        parts[service] = part
        for (key, server) in part.virtualServers {
            owners[key] = server.service
            state.virtualServers[key] = server
            delta.added.virtualServers[key] = server
        }
        for address in part.addresses where Self.count(&addressCounts, address, by: 1) {
            state.addresses.insert(address)
            delta.added.addresses.insert(address)
        }
        for address in part.packetPath.localEndpoints where Self.count(&endpointCounts, address, by: 1) {
            state.packetPath.localEndpoints.insert(address)
            delta.added.packetPath.localEndpoints.insert(address)
        }
        for port in part.packetPath.healthCheckNodePorts where Self.count(&healthCheckCounts, port, by: 1) {
            state.packetPath.healthCheckNodePorts.insert(port)
            delta.added.packetPath.healthCheckNodePorts.insert(port)
        }
        // Keyed by the address of a virtual server this Service holds alone.
        state.packetPath.clusterIPs.formUnion(part.packetPath.clusterIPs)
        delta.added.packetPath.clusterIPs.formUnion(part.packetPath.clusterIPs)
        state.packetPath.external.formUnion(part.packetPath.external)
        delta.added.packetPath.external.formUnion(part.packetPath.external)
        state.packetPath.inClusterMarks.merge(part.packetPath.inClusterMarks) { _, new in new }
        delta.added.packetPath.inClusterMarks.merge(part.packetPath.inClusterMarks) { _, new in new }
        state.packetPath.firewalls.merge(part.packetPath.firewalls) { _, new in new }
        delta.added.packetPath.firewalls.merge(part.packetPath.firewalls) { _, new in new }
    }

    private mutating func remove(_ service: ObjectName, _ part: DesiredState, into delta: inout DesiredStateDelta) {
        parts[service] = nil
        for (key, server) in part.virtualServers where owners[key]?.object == service {
            owners[key] = nil
            state.virtualServers[key] = nil
            delta.removed.virtualServers[key] = server
        }
        for address in part.addresses where Self.count(&addressCounts, address, by: -1) {
            state.addresses.remove(address)
            delta.removed.addresses.insert(address)
        }
        for address in part.packetPath.localEndpoints where Self.count(&endpointCounts, address, by: -1) {
            state.packetPath.localEndpoints.remove(address)
            delta.removed.packetPath.localEndpoints.insert(address)
        }
        for port in part.packetPath.healthCheckNodePorts where Self.count(&healthCheckCounts, port, by: -1) {
            state.packetPath.healthCheckNodePorts.remove(port)
            delta.removed.packetPath.healthCheckNodePorts.insert(port)
        }
        state.packetPath.clusterIPs.subtract(part.packetPath.clusterIPs)
        delta.removed.packetPath.clusterIPs.formUnion(part.packetPath.clusterIPs)
        state.packetPath.external.subtract(part.packetPath.external)
        delta.removed.packetPath.external.formUnion(part.packetPath.external)
        for (address, mark) in part.packetPath.inClusterMarks {
            state.packetPath.inClusterMarks[address] = nil
            delta.removed.packetPath.inClusterMarks[address] = mark
        }
        for (address, ranges) in part.packetPath.firewalls {
            state.packetPath.firewalls[address] = nil
            delta.removed.packetPath.firewalls[address] = ranges
        }
    }

    /// Counts `key` up or down; true when it appears (0 → 1) or goes (1 → 0).
    private static func count<Key: Hashable>(_ counts: inout [Key: Int], _ key: Key, by step: Int) -> Bool {
        let before = counts[key, default: 0]
        let after = before + step
        counts[key] = after > 0 ? after : nil
        return (before == 0) != (after == 0)
    }
}

/// What one or more Service updates took from the desired state and put into it. A virtual
/// server whose real servers changed is in both; so is a map entry whose value changed.
public struct DesiredStateDelta: Sendable {
    public var removed = DesiredState()
    public var added = DesiredState()
    /// The Services whose part changed.
    public var services: Set<ObjectName> = []

    public init() {}

    public var isEmpty: Bool { services.isEmpty }

    /// From one whole state to another.
    public static func between(_ old: DesiredState, _ new: DesiredState) -> DesiredStateDelta {
        var delta = DesiredStateDelta()
        for (key, server) in old.virtualServers where new.virtualServers[key] != server { delta.removed.virtualServers[key] = server }
        for (key, server) in new.virtualServers where old.virtualServers[key] != server { delta.added.virtualServers[key] = server }
        delta.removed.addresses = old.addresses.subtracting(new.addresses)
        delta.added.addresses = new.addresses.subtracting(old.addresses)
        let (before, after) = (old.packetPath, new.packetPath)
        delta.removed.packetPath.clusterIPs = before.clusterIPs.subtracting(after.clusterIPs)
        delta.added.packetPath.clusterIPs = after.clusterIPs.subtracting(before.clusterIPs)
        delta.removed.packetPath.external = before.external.subtracting(after.external)
        delta.added.packetPath.external = after.external.subtracting(before.external)
        delta.removed.packetPath.localEndpoints = before.localEndpoints.subtracting(after.localEndpoints)
        delta.added.packetPath.localEndpoints = after.localEndpoints.subtracting(before.localEndpoints)
        delta.removed.packetPath.healthCheckNodePorts = before.healthCheckNodePorts.subtracting(after.healthCheckNodePorts)
        delta.added.packetPath.healthCheckNodePorts = after.healthCheckNodePorts.subtracting(before.healthCheckNodePorts)
        for (key, mark) in before.inClusterMarks where after.inClusterMarks[key] != mark { delta.removed.packetPath.inClusterMarks[key] = mark }
        for (key, mark) in after.inClusterMarks where before.inClusterMarks[key] != mark { delta.added.packetPath.inClusterMarks[key] = mark }
        for (key, ranges) in before.firewalls where after.firewalls[key] != ranges { delta.removed.packetPath.firewalls[key] = ranges }
        for (key, ranges) in after.firewalls where before.firewalls[key] != ranges { delta.added.packetPath.firewalls[key] = ranges }
        return delta
    }

    /// Every virtual server key that was taken or put.
    public var virtualServerKeys: Set<VirtualServerKey> {
        Set(removed.virtualServers.keys).union(added.virtualServers.keys)
    }
}

/// Firewall marks for in-cluster virtual servers, kept for as long as their name is in use, so
/// that a change to one Service moves no other Service's mark. Marks only need to agree between
/// this node's nf_tables map and its IPVS table.
public struct FirewallMarkTable: Hashable, Sendable {
    public private(set) var marks: [String: UInt32] = [:]
    private var taken: Set<UInt32> = []

    public init() {}

    /// Marks for `names`: kept ones stay, new ones are hashed in name order, probing upwards.
    mutating func assign(_ names: [String]) -> [String: UInt32] {
        var result: [String: UInt32] = [:]
        for name in names.sorted() {
            if let mark = marks[name] {
                result[name] = mark
                continue
            }
            let mask: UInt32 = 1 << InClusterFirewallMarks.hashBits - 1
            var candidate = InClusterFirewallMarks.hash(name) & mask
            while taken.contains(candidate) { candidate = (candidate + 1) & mask }
            taken.insert(candidate)
            marks[name] = InClusterFirewallMarks.base | candidate
            result[name] = marks[name]
        }
        return result
    }

    mutating func release(_ name: String) {
        guard let mark = marks.removeValue(forKey: name) else { return }
        taken.remove(mark & (1 << InClusterFirewallMarks.hashBits - 1))
    }

    /// Forgets every name but these.
    mutating func keep(only names: Set<String>) {
        for name in marks.keys where !names.contains(name) { release(name) }
    }
}

extension VirtualServerKey {
    /// The address of an address-and-port virtual server; nil for a firewall-mark one.
    var address: IPAddress? {
        if case .service(_, let address, _) = self { return address }
        return nil
    }
}

extension ServicePortName {
    /// The Service's name.
    var object: ObjectName { ObjectName(namespace: namespace, name: name) }
}
