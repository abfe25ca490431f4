import IPVS

/// One usable endpoint for a Service port, after merging duplicates across slices.
struct EndpointCandidate: Hashable {
    var key: RealServerKey
    var conditions: EndpointSlice.Conditions
    var isLocal: Bool
    /// What topology needs: the slice's hints, and what to derive them from when it has none.
    var hints = EndpointSlice.Hints()
    var nodeName: String?
    var zone: String?
    /// `targetRef.name` of a Pod, for endpoint weights.
    var podName: String?
    /// The IPVS weight (see `EndpointWeights`).
    var weight: Int32 = 1

    /// Ready beats serving-and-terminating beats anything else.
    var rank: Int {
        if conditions.ready { return 2 }
        return conditions.serving && conditions.terminating ? 1 : 0
    }
}

extension EndpointCandidate {
    /// The endpoints of the slices' port that matches `port` by name and protocol, of one family.
    static func candidates(for port: Service.Port, family: IPAddress.Family, in slices: [EndpointSlice],
                           nodeName: String) -> [EndpointCandidate] {
        var byKey: [RealServerKey: EndpointCandidate] = [:]
        for slice in slices where slice.addressType.family == family {
            guard let number = slice.ports.first(where: { $0.name == port.name && $0.protocol == port.protocol })?.port
            else { continue }
            for endpoint in slice.endpoints {
                // The API allows several fungible addresses; kube-proxy uses the first.
                guard let address = endpoint.addresses.first, address.family == family else { continue }
                let isLocal = !nodeName.isEmpty && endpoint.nodeName == nodeName
                let candidate = EndpointCandidate(key: RealServerKey(address: address, port: number),
                                                  conditions: endpoint.conditions, isLocal: isLocal,
                                                  hints: endpoint.hints, nodeName: endpoint.nodeName,
                                                  zone: endpoint.zone, podName: endpoint.podName)
                if let existing = byKey[candidate.key] {
                    // The same pod in two slices (e.g. during a slice rewrite): keep the better view of it.
                    var merged = existing.rank >= candidate.rank ? existing : candidate
                    merged.isLocal = existing.isLocal || candidate.isLocal
                    byKey[candidate.key] = merged
                } else {
                    byKey[candidate.key] = candidate
                }
            }
        }
        return byKey.values.sorted { $0.key < $1.key }
    }
}

extension Array where Element == EndpointCandidate {
    /// kube-proxy's choice: the ready endpoints (for the Cluster policy, those `topology` keeps);
    /// when there are none, the ones still serving while terminating, so that a rolling update of
    /// the last pods does not drop traffic; never others.
    func selected(localOnly: Bool, topology: TopologyMode = .all) -> [RealServer] {
        let pool = localOnly ? filter(\.isLocal) : self
        var chosen = pool.filter { $0.conditions.ready && (localOnly || topology.keeps($0)) }
        if chosen.isEmpty {
            chosen = pool.filter { $0.conditions.serving && $0.conditions.terminating }
        }
        return chosen.map { RealServer(key: $0.key, forwarding: .masquerade, weight: $0.weight) }
    }
}
