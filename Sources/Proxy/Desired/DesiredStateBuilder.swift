import IPVS

/// Turns Services, one at a time, into virtual servers. Services are fed in name order, so that
/// when two claim the same virtual server the same one wins on every node and every sync.
struct DesiredStateBuilder {
    let node: NodeConfig
    private(set) var state = DesiredState()

    init(node: NodeConfig) {
        self.node = node
    }

    mutating func add(_ service: Service, slices: [EndpointSlice]) {
        let object = "Service \(service.metadata.qualifiedName)"
        // kube-proxy's ShouldSkipService: nothing to proxy without a cluster IP.
        if service.type == .externalName || service.isHeadless { return }
        guard !service.clusterIPs.isEmpty else {
            return warn(object, "has no cluster IP; nothing to proxy")
        }

        let settings = settings(for: service, object: object)
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
                                                              nodeName: node.nodeName)
                let cluster = candidates.selected(localOnly: false)
                let local = candidates.selected(localOnly: true)
                let internalReals = service.internalTrafficPolicy == .local ? local : cluster
                let externalReals = service.externalTrafficPolicy == .local ? local : cluster

                func add(_ address: IPAddress, _ number: UInt16, _ reals: [RealServer], isVIP: Bool) {
                    let server = settings.server(.service(port.protocol, address, number))
                    insert(DesiredVirtualServer(server: server, realServers: reals, service: name), object: object)
                    if isVIP { state.addresses.insert(address) }
                }

                for address in service.clusterIPs where address.family == family {
                    add(address, port.port, internalReals, isVIP: true)
                }
                for address in externalIPs + loadBalancerIPs where address.family == family {
                    add(address, port.port, externalReals, isVIP: true)
                }
                if service.hasNodePorts, let nodePort = port.nodePort {
                    for address in node.nodePortAddresses where address.family == family {
                        add(address, nodePort, externalReals, isVIP: false)
                    }
                }
            }
        }
    }

    /// Scheduler, persistence and flags, shared by every virtual server of a Service.
    private struct Settings {
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

    private mutating func insert(_ desired: DesiredVirtualServer, object: String) {
        let key = desired.server.key
        if let existing = state.virtualServers[key] {
            if existing.service != desired.service {
                warn(object, "\(key) is already used by \(existing.service); ignored for \(desired.service)")
            }
            return
        }
        state.virtualServers[key] = desired
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
