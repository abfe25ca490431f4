import IPVS

/// Which endpoints a Cluster-policy Service port uses on this node, from the endpoints' hints,
/// as kube-proxy decides it: node hints when every ready endpoint has one and one names this
/// node; else zone hints the same way against this node's zone; else every endpoint.
enum TopologyMode: Hashable {
    case all
    case sameZone(String)
    case sameNode(String)

    /// Whether a ready endpoint is used. There is no fallback here: it is in choosing the mode.
    func keeps(_ candidate: EndpointCandidate) -> Bool {
        switch self {
        case .all: true
        case .sameZone(let zone): candidate.hints.forZones.contains(zone)
        case .sameNode(let name): candidate.hints.forNodes.contains(name)
        }
    }
}

extension Array where Element == EndpointCandidate {
    /// The mode for these endpoints (one Service port, one family) on `node`.
    func topologyMode(on node: NodeConfig) -> TopologyMode {
        let ready = filter(\.conditions.ready)
        // Unready endpoints have no say: their hints may be stale.
        guard !ready.isEmpty else { return .all }
        if ready.allSatisfy({ !$0.hints.forNodes.isEmpty }), ready.contains(where: { $0.hints.forNodes.contains(node.nodeName) }) {
            return .sameNode(node.nodeName)
        }
        if let zone = node.zone, ready.allSatisfy({ !$0.hints.forZones.isEmpty }),
           ready.contains(where: { $0.hints.forZones.contains(zone) }) {
            return .sameZone(zone)
        }
        return .all
    }

    /// The real servers of a Cluster-policy Service port: topology applies (Local policies take
    /// the node's own endpoints and ignore hints).
    func clusterEndpoints(of service: Service, on node: NodeConfig) -> [RealServer] {
        let candidates = hintsDerived(for: service)
        return candidates.selected(localOnly: false, topology: candidates.topologyMode(on: node))
    }

    /// With a `trafficDistribution`, the EndpointSlice controller gives each ready endpoint a hint
    /// for its own zone, and with `PreferSameNode` one for its own node too. Endpoints that carry
    /// no hints at all (a file source has no controller) get those hints here, so that the
    /// Service behaves as it would in a cluster. Hints that are present are used as they are;
    /// with the topology-mode annotation the controller's own heuristic decides, so nothing is
    /// derived then.
    func hintsDerived(for service: Service) -> [EndpointCandidate] {
        guard let distribution = service.trafficDistribution, !service.hasAutomaticTopology,
              allSatisfy({ $0.hints == EndpointSlice.Hints() }) else { return self }
        return map { candidate in
            guard candidate.conditions.ready else { return candidate }
            var hinted = candidate
            if let zone = candidate.zone { hinted.hints.forZones = [zone] }
            if distribution == .preferSameNode, let name = candidate.nodeName { hinted.hints.forNodes = [name] }
            return hinted
        }
    }
}

extension Service {
    /// `service.kubernetes.io/topology-mode: Auto` (or its deprecated predecessor
    /// `service.kubernetes.io/topology-aware-hints`), read as the EndpointSlice controller does.
    var hasAutomaticTopology: Bool {
        let annotations = metadata.annotations
        let value = annotations["service.kubernetes.io/topology-mode"] ?? annotations["service.kubernetes.io/topology-aware-hints"]
        return value == "Auto" || value == "auto"
    }
}
