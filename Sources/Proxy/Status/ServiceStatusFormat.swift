import IPVS

/// `kipvs status --services`: the kernel's IPVS table joined with the Services that explain it,
/// on one page. Each Service port comes with its type, traffic policies and affinity; each of its
/// virtual servers with what the address is; each real server with its endpoint's state in the
/// EndpointSlices, its node, and its connections. Virtual servers no Service explains come last:
/// stale ones (kipvs' own; the next sync deletes them) and foreign ones (left alone).
public enum ServiceStatusFormat {
    /// `table` in any order, as `IPVSHandle.table()` returns it; the output is sorted.
    public static func render(cluster: ClusterState, desired: DesiredState, ownership: Ownership, nodeName: String,
                              table: [(VirtualServerStatus, [RealServerStatus])]) -> String {
        var kernel: [VirtualServerKey: (VirtualServerStatus, [RealServerStatus])] = [:]
        for entry in table { kernel[entry.0.server.key] = entry }
        let services = Dictionary(cluster.services.map { (ServiceReference(namespace: $0.metadata.namespace, name: $0.metadata.name), $0) },
                                  uniquingKeysWith: { first, _ in first })
        let slices = Dictionary(grouping: cluster.endpointSlices.filter { !$0.isForAnotherProxy && $0.serviceName != nil }) {
            ServiceReference(namespace: $0.metadata.namespace, name: $0.serviceName!)
        }

        var rows: [Row] = []
        var count = Counts()
        let byPort = Dictionary(grouping: desired.virtualServers.values, by: \.service)
        for name in byPort.keys.sorted() {
            let reference = ServiceReference(namespace: name.namespace, name: name.name)
            let service = services[reference]
            rows.append(.service(name: name.description, details: service.map(details) ?? ""))
            count.servicePorts += 1
            for wanted in byPort[name]!.sorted(by: { $0.server.key < $1.server.key }) {
                let key = wanted.server.key
                let inKernel = kernel.removeValue(forKey: key)
                count.virtualServers += 1
                var role = service.map { self.role(of: key, in: $0) } ?? "?"
                if inKernel == nil {
                    role += ", not in the kernel yet"
                    count.missing += 1
                }
                rows.append(.virtual(key: key, scheduler: inKernel?.0.server.scheduler ?? wanted.server.scheduler,
                                     persistence: persistence(inKernel?.0.server ?? wanted.server), role: role))
                let port = service?.ports.first { $0.name == name.port && $0.protocol == name.protocol }
                let endpoints = port.map {
                    EndpointCandidate.candidates(for: $0, family: key.family, in: slices[reference] ?? [], nodeName: nodeName)
                } ?? []
                rows += realServerRows(wanted: wanted.realServers, kernel: inKernel?.1 ?? [], endpoints: endpoints,
                                       inKernel: inKernel != nil, count: &count)
            }
        }

        let unexplained = kernel.keys.sorted()
        if !unexplained.isEmpty {
            rows.append(.service(name: "(no Service)", details: ""))
            for key in unexplained {
                let (status, reals) = kernel[key]!
                let owned = ownership.owns(key)
                if owned { count.stale += 1 } else { count.foreign += 1 }
                rows.append(.virtual(key: key, scheduler: status.server.scheduler, persistence: persistence(status.server),
                                     role: owned ? "stale: kipvs deletes it at the next sync" : "foreign: kipvs leaves it alone"))
                for real in reals.sorted(by: { $0.server.key < $1.server.key }) {
                    count.realServers += 1
                    rows.append(.real(address: real.server.key.description, weight: "\(real.server.weight)", state: "-",
                                      node: "-", active: real.activeConnections, inactive: real.inactiveConnections))
                }
            }
        }

        var out = layout(rows)
        out += count.summary + "\n"
        for warning in desired.warnings { out += "warning: \(warning)\n" }
        return out
    }

    // MARK: Rows

    private enum Row {
        case service(name: String, details: String)
        case virtual(key: VirtualServerKey, scheduler: String, persistence: String, role: String)
        case real(address: String, weight: String, state: String, node: String, active: UInt32, inactive: UInt32)
    }

    private struct Counts {
        var servicePorts = 0, virtualServers = 0, missing = 0, realServers = 0, draining = 0, stale = 0, foreign = 0

        var summary: String {
            func count(_ n: Int, _ noun: String) -> String { n == 1 ? "1 \(noun)" : "\(n) \(noun)s" }
            return count(servicePorts, "Service port") + ", " + count(virtualServers, "virtual server")
                + (missing > 0 ? " (\(missing) not in the kernel yet)" : "") + ", " + count(realServers, "real server")
                + (draining > 0 ? " (\(draining) draining)" : "") + "; without a Service: \(stale) stale, \(foreign) foreign"
        }
    }

    /// Every real server the kernel has or the Service wants, with its endpoint's state.
    private static func realServerRows(wanted: [RealServerKey: RealServer], kernel: [RealServerStatus],
                                       endpoints: [EndpointCandidate], inKernel: Bool, count: inout Counts) -> [Row] {
        let current = Dictionary(kernel.map { ($0.server.key, $0) }, uniquingKeysWith: { first, _ in first })
        let byKey = Dictionary(endpoints.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
        var rows: [Row] = []
        for key in Set(wanted.keys).union(current.keys).sorted() {
            let real = current[key]
            let endpoint = byKey[key]
            var state = endpoint.map { conditions($0.conditions) } ?? "removed"
            if let real {
                count.realServers += 1
                if let want = wanted[key] {
                    if want.weight != real.server.weight { state += ", weight \(want.weight) at the next sync" }
                } else if real.server.weight == 0 {
                    state += ", draining"
                    count.draining += 1
                } else {
                    state += ", deleted at the next sync"
                }
            } else if inKernel {
                state += ", not in the kernel yet"
            }
            rows.append(.real(address: key.description, weight: real.map { "\($0.server.weight)" } ?? "-", state: state,
                              node: endpoint?.nodeName ?? "-", active: real?.activeConnections ?? 0,
                              inactive: real?.inactiveConnections ?? 0))
        }
        return rows
    }

    /// What the endpoint's conditions say, as `kubectl get endpointslices -o yaml` would show them.
    private static func conditions(_ c: EndpointSlice.Conditions) -> String {
        if c.ready { return c.terminating ? "ready, terminating" : "ready" }
        if c.terminating { return c.serving ? "serving, terminating" : "terminating" }
        return c.serving ? "serving, not ready" : "not ready"
    }

    private static func details(_ service: Service) -> String {
        var parts = [service.type.rawValue, "external \(service.externalTrafficPolicy.rawValue)",
                     "internal \(service.internalTrafficPolicy.rawValue)"]
        if case .clientIP(let seconds) = service.sessionAffinity { parts.append("affinity ClientIP \(seconds)s") }
        return parts.joined(separator: ", ")
    }

    /// What a virtual server's address is to its Service.
    private static func role(of key: VirtualServerKey, in service: Service) -> String {
        guard case .service(_, let address, _) = key else { return "in-cluster clients (Local policy)" }
        if service.clusterIPs.contains(address) { return "cluster IP" }
        if service.externalIPs.contains(address) { return "external IP" }
        if service.loadBalancerIngress.contains(where: { $0.ip == address }) { return "load balancer" }
        return "node port"
    }

    private static func persistence(_ server: VirtualServer) -> String {
        server.isPersistent ? "persistent \(server.timeout)" : ""
    }

    // MARK: Layout

    private static func layout(_ rows: [Row]) -> String {
        var virtualWidth = "Prot VirtualAddress:Port".count, realWidth = "RemoteAddress:Port".count
        var stateWidth = "State".count, nodeWidth = "Node".count, schedulerWidth = "Scheduler".count
        for row in rows {
            switch row {
            case .service: break
            case .virtual(let key, let scheduler, let persistence, _):
                virtualWidth = max(virtualWidth, virtual(key).count)
                schedulerWidth = max(schedulerWidth, (scheduler + " " + persistence).count)
            case .real(let address, _, let state, let node, _, _):
                realWidth = max(realWidth, address.count)
                stateWidth = max(stateWidth, state.count)
                nodeWidth = max(nodeWidth, node.count)
            }
        }
        func pad(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(0, width - text.count)) }
        var lines = [
            "Service port  Type, traffic policies, affinity",
            "  " + pad("Prot VirtualAddress:Port", virtualWidth) + "  " + pad("Scheduler", schedulerWidth) + "  Role",
            "    " + pad("-> RemoteAddress:Port", realWidth + 3) + "  Weight  " + pad("State", stateWidth) + "  "
                + pad("Node", nodeWidth) + "  ActiveConn  InActConn",
        ]
        for row in rows {
            switch row {
            case .service(let name, let details):
                lines.append(details.isEmpty ? name : "\(name)  \(details)")
            case .virtual(let key, let scheduler, let persistence, let role):
                let schedule = persistence.isEmpty ? scheduler : "\(scheduler) \(persistence)"
                lines.append("  " + pad(virtual(key), virtualWidth) + "  " + pad(schedule, schedulerWidth) + "  " + role)
            case .real(let address, let weight, let state, let node, let active, let inactive):
                lines.append("    -> " + pad(address, realWidth) + "  " + pad(weight, 6) + "  " + pad(state, stateWidth) + "  "
                             + pad(node, nodeWidth) + "  " + pad("\(active)", 10) + "  \(inactive)")
            }
        }
        return lines.map { String($0.reversed().drop { $0 == " " }.reversed()) }.joined(separator: "\n") + "\n"
    }

    /// `TCP  10.96.0.10:80`, `FWM  7`: ipvsadm's protocol column and address.
    private static func virtual(_ key: VirtualServerKey) -> String {
        switch key {
        case .service(let proto, let address, let port): pad4("\(proto)") + Endpoint.format(address, port)
        case .firewallMark(let family, let mark): "FWM  \(mark)" + (family == .inet6 ? " IPv6" : "")
        }
    }

    private static func pad4(_ text: String) -> String { text + String(repeating: " ", count: max(1, 5 - text.count)) }
}

extension Agent {
    /// `kipvs status --services` for `cluster`: reads the node's addresses and the kernel's table,
    /// changes nothing.
    public func serviceStatus(_ cluster: ClusterState) throws -> String {
        let addresses = try network.addresses(dummyInterface: node.dummyInterface, create: false)
        _ = useNodeAddresses(addresses)
        let desired = DesiredState(cluster, node: node)
        let ownership = Ownership(node: node, desired: desired, boundAddresses: addresses.bound)
        return ServiceStatusFormat.render(cluster: cluster, desired: desired, ownership: ownership, nodeName: node.nodeName,
                                          table: try ipvs.table())
    }
}
