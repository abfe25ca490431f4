import IPVS

/// What one health-check node port answers for: a Service and how many of its endpoints run here.
public struct HealthCheckNodePort: Hashable, Sendable {
    public var namespace: String
    public var name: String
    /// Ready endpoints of the Service on this node, each pod address counted once.
    public var localEndpoints: Int

    public init(namespace: String, name: String, localEndpoints: Int) {
        self.namespace = namespace
        self.name = name
        self.localEndpoints = localEndpoints
    }

    /// `default/web`
    public var qualifiedName: String { "\(namespace)/\(name)" }
}

/// The health-check node ports a node answers on, as kube-proxy's service health server: one per
/// LoadBalancer Service with `externalTrafficPolicy: Local`, where load balancers ask whether the
/// node has endpoints of that Service.
public struct HealthCheckNodePorts: Hashable, Sendable {
    public var ports: [UInt16: HealthCheckNodePort]
    public var warnings: [DesiredState.Warning]

    public init(ports: [UInt16: HealthCheckNodePort] = [:], warnings: [DesiredState.Warning] = []) {
        self.ports = ports
        self.warnings = warnings
    }

    /// Services are taken in name order, so that when two claim one port the same one wins on every node.
    public init(_ cluster: ClusterState, nodeName: String) {
        self.init()
        let services = cluster.services
            .filter { !$0.metadata.isForAnotherProxy && $0.needsHealthCheck }
            .sorted { ($0.metadata.namespace, $0.metadata.name) < ($1.metadata.namespace, $1.metadata.name) }
        guard !services.isEmpty else { return }
        let slices = Dictionary(grouping: cluster.endpointSlices.filter { !$0.isForAnotherProxy && $0.serviceName != nil }) {
            ServiceReference(namespace: $0.metadata.namespace, name: $0.serviceName!)
        }
        for service in services {
            let object = "Service \(service.metadata.qualifiedName)"
            guard let port = service.healthCheckNodePort else {
                warnings.append(.init(object: object,
                                      message: "externalTrafficPolicy Local without healthCheckNodePort; no health check served"))
                continue
            }
            if let owner = ports[port] {
                warnings.append(.init(object: object,
                                      message: "healthCheckNodePort \(port) is already used by \(owner.qualifiedName); ignored"))
                continue
            }
            let reference = ServiceReference(namespace: service.metadata.namespace, name: service.metadata.name)
            ports[port] = HealthCheckNodePort(
                namespace: service.metadata.namespace, name: service.metadata.name,
                localEndpoints: Self.localReadyEndpoints(in: slices[reference] ?? [], nodeName: nodeName))
        }
    }

    /// kube-proxy's count: ready endpoints on this node, once per address however many slices and
    /// ports list them. Terminating endpoints are left out so that a draining node fails its check.
    static func localReadyEndpoints(in slices: [EndpointSlice], nodeName: String) -> Int {
        guard !nodeName.isEmpty else { return 0 }
        var addresses = Set<IPAddress>()
        for slice in slices {
            // kube-proxy keeps endpoints only under a slice port with a number.
            guard let family = slice.addressType.family, slice.ports.contains(where: { $0.port != nil }) else { continue }
            for endpoint in slice.endpoints where endpoint.conditions.ready && endpoint.nodeName == nodeName {
                // The API allows several fungible addresses; kube-proxy uses the first.
                guard let address = endpoint.addresses.first, address.family == family else { continue }
                addresses.insert(address)
            }
        }
        return addresses.count
    }
}

extension Service {
    /// kube-proxy's rule: a health check for LoadBalancer Services with `externalTrafficPolicy: Local`
    /// that it proxies at all (a cluster IP and at least one port).
    var needsHealthCheck: Bool {
        type == .loadBalancer && externalTrafficPolicy == .local && !isHeadless && !clusterIPs.isEmpty && !ports.isEmpty
    }
}
