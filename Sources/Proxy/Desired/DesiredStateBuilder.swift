import IPVS

/// Turns one Service into what it puts into the desired state. When two Services claim the same
/// virtual server the first in name order wins, on every node and every sync: `claimedElsewhere`
/// names the Service port of another Service that holds a key already.
struct DesiredStateBuilder {
    let node: NodeConfig
    let claimedElsewhere: (VirtualServerKey) -> ServicePortName?
    private(set) var state = DesiredState()
    /// Virtual servers this Service asks for that another Service holds.
    private(set) var lostKeys: Set<VirtualServerKey> = []
    /// Virtual servers on firewall marks, which get their marks once every Service is known.
    private(set) var inClusterServers: [InClusterServer] = []

    init(node: NodeConfig, claimedElsewhere: @escaping (VirtualServerKey) -> ServicePortName? = { _ in nil }) {
        self.node = node
        self.claimedElsewhere = claimedElsewhere
    }

    mutating func add(_ service: Service, slices: [EndpointSlice]) {
        let object = "Service \(service.metadata.qualifiedName)"
        // kube-proxy's ShouldSkipService: nothing to proxy without a cluster IP.
        if service.type == .externalName || service.isHeadless { return }
        guard !service.clusterIPs.isEmpty else {
            return warn(object, "has no cluster IP; nothing to proxy")
        }

        let settings = settings(for: service, object: object)
        let (weights, weightsProblem) = service.endpointWeights
        if let weightsProblem { warn(object, weightsProblem) }
        // A family is served only through a cluster IP of that family, as with kube-proxy's
        // one proxier per family; other addresses of that family are dropped.
        let families = service.clusterIPs.map(\.family).uniqued()
        let externalIPs = served(service.externalIPs, families, field: "externalIPs", object: object)
        let loadBalancerIPs = service.type == .loadBalancer
            ? served(service.loadBalancerIngress.filter { $0.ipMode == .vip }.map(\.ip), families,
                     field: "status.loadBalancer.ingress", object: object)
            : []

        for port in service.ports {
            let name = ServicePortName(namespace: service.metadata.namespace, name: service.metadata.name,
                                       port: port.name, protocol: port.protocol)
            for family in families {
                let candidates = EndpointCandidate.candidates(for: port, family: family, in: slices,
                                                              nodeName: node.nodeName).weighted(by: weights)
                let cluster = candidates.clusterEndpoints(of: service, on: node)
                let local = candidates.selected(localOnly: true)
                let internalReals = service.internalTrafficPolicy == .local ? local : cluster
                let externalReals = service.externalTrafficPolicy == .local ? local : cluster

                @discardableResult
                func add(_ address: IPAddress, _ number: UInt16, _ reals: [RealServer], isVIP: Bool) -> Bool {
                    let server = settings.server(.service(port.protocol, address, number))
                    guard insert(DesiredVirtualServer(server: server, realServers: reals, service: name), object: object)
                    else { return false }
                    if isVIP { state.addresses.insert(address) }
                    return true
                }

                var external: [ServiceAddress] = []
                for address in service.clusterIPs where address.family == family {
                    if add(address, port.port, internalReals, isVIP: true) {
                        state.packetPath.clusterIPs.insert(ServiceAddress(address, port.protocol, port.port))
                    }
                }
                for address in externalIPs where address.family == family {
                    if add(address, port.port, externalReals, isVIP: true) {
                        external.append(ServiceAddress(address, port.protocol, port.port))
                    }
                }
                for address in loadBalancerIPs where address.family == family {
                    guard add(address, port.port, externalReals, isVIP: true) else { continue }
                    let target = ServiceAddress(address, port.protocol, port.port)
                    external.append(target)
                    // kube-proxy: any range that covers everything means no firewall at all.
                    let ranges = service.loadBalancerSourceRanges.filter { $0.address.family == family }
                    if !ranges.isEmpty, !ranges.contains(where: { $0.prefixLength == 0 }) {
                        state.packetPath.firewalls[target] = ranges
                    }
                }
                if service.hasNodePorts, let nodePort = port.nodePort, nodePortInRange(nodePort, object: object) {
                    for address in node.nodePortAddresses where address.family == family {
                        if add(address, nodePort, externalReals, isVIP: false) {
                            external.append(ServiceAddress(address, port.protocol, nodePort))
                        }
                    }
                }
                state.packetPath.localEndpoints.formUnion(local.map(\.key.address))
                if service.externalTrafficPolicy == .local {
                    if !external.isEmpty {
                        inClusterServers.append(InClusterServer(name: name, family: family, settings: settings,
                                                                realServers: cluster, addresses: external))
                    }
                } else {
                    state.packetPath.external.formUnion(external)
                }
            }
        }
        // As HealthCheckNodePorts: only load balancers with the Local policy have one.
        if service.externalTrafficPolicy == .local, service.type == .loadBalancer, let port = service.healthCheckNodePort {
            state.packetPath.healthCheckNodePorts.insert(port)
        }
    }

    /// A virtual server on a firewall mark, with every endpoint, for in-cluster clients of an
    /// `externalTrafficPolicy: Local` Service port.
    struct InClusterServer: Hashable {
        var name: ServicePortName
        var family: IPAddress.Family
        var settings: Settings
        var realServers: [RealServer]
        var addresses: [ServiceAddress]

        var markName: String { "\(name)/\(name.protocol)/\(family == .inet ? "IPv4" : "IPv6")" }
    }

    /// The Service's part of the desired state, its in-cluster virtual servers on the marks given.
    static func withMarks(_ state: DesiredState, _ servers: [InClusterServer], marks: [String: UInt32]) -> DesiredState {
        var state = state
        for server in servers {
            let mark = marks[server.markName]!
            let key = VirtualServerKey.firewallMark(server.family, mark)
            state.virtualServers[key] = DesiredVirtualServer(server: server.settings.server(key),
                                                             realServers: server.realServers, service: server.name)
            for address in server.addresses { state.packetPath.inClusterMarks[address] = mark }
        }
        return state
    }

    /// A node port outside `--service-node-port-range` could land on any service of the node (SSH's
    /// 22, say), and kipvs deletes only node-address virtual servers inside the range: refuse it.
    private mutating func nodePortInRange(_ port: UInt16, object: String) -> Bool {
        if node.nodePortRange.contains(port) { return true }
        let message = "nodePort \(port) is outside the node port range \(node.nodePortRange.lowerBound)-\(node.nodePortRange.upperBound); ignored"
        // Once, not once per address family.
        if !state.warnings.contains(DesiredState.Warning(object: object, message: message)) { warn(object, message) }
        return false
    }

    /// Scheduler, persistence and flags, shared by every virtual server of a Service.
    struct Settings: Hashable {
        var scheduler: IPVSScheduler
        var flags: VirtualServerFlags
        var timeout: UInt32

        /// Netmask /32 or /128: affinity is per client address.
        func server(_ key: VirtualServerKey) -> VirtualServer {
            VirtualServer(key: key, scheduler: scheduler.rawValue, flags: flags, timeout: timeout)
        }
    }

    private mutating func settings(for service: Service, object: String) -> Settings {
        var scheduler = node.scheduler
        if let name = service.metadata.annotations[WellKnown.schedulerAnnotation] {
            if let chosen = IPVSScheduler(rawValue: name) {
                scheduler = chosen
            } else {
                warn(object, "annotation \(WellKnown.schedulerAnnotation): unknown IPVS scheduler \"\(name)\"; using \(node.scheduler)")
            }
        }
        var flags: VirtualServerFlags = []
        var timeout: UInt32 = 0
        if case .clientIP(let seconds) = service.sessionAffinity {
            flags.insert(.persistent)
            timeout = seconds
        }
        // Maglev hashes only the address unless told to include the port, as kube-proxy sets it.
        if scheduler == .maglevHashing { flags.insert(.schedulerPort) }
        // mh keeps a weight-0 real server's table slots (its last weight): without fallback, new
        // flows hashed to them find no server and are dropped instead of going elsewhere.
        if scheduler == .maglevHashing, !service.endpointWeights.weights.isEmpty { flags.insert(.schedulerFallback) }
        return Settings(scheduler: scheduler, flags: flags, timeout: timeout)
    }

    private mutating func served(_ addresses: [IPAddress], _ families: [IPAddress.Family], field: String,
                                 object: String) -> [IPAddress] {
        for address in addresses where !families.contains(address.family) {
            let family = address.isIPv4 ? "IPv4" : "IPv6"
            warn(object, "\(field): \(address) ignored: the Service has no \(family) cluster IP")
        }
        return addresses.filter { families.contains($0.family) }
    }

    /// Returns false when another Service port already has that virtual server.
    private mutating func insert(_ desired: DesiredVirtualServer, object: String) -> Bool {
        let key = desired.server.key
        if let existing = state.virtualServers[key]?.service ?? claimedElsewhere(key) {
            if existing != desired.service {
                warn(object, "\(key) is already used by \(existing); ignored for \(desired.service)")
            }
            if state.virtualServers[key] == nil { lostKeys.insert(key) }
            return false
        }
        state.virtualServers[key] = desired
        return true
    }

    private mutating func warn(_ object: String, _ message: String) {
        state.warnings.append(DesiredState.Warning(object: object, message: message))
    }
}

extension Array where Element: Hashable {
    /// The elements in first-seen order, without repeats.
    func uniqued() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}
