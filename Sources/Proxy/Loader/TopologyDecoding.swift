import Yams

// Decoding of what topology and node health need: a Service's trafficDistribution, an endpoint's
// zone, hints and pod, and the Node object itself.

extension Service.TrafficDistribution {
    /// `spec.trafficDistribution`. A value this version does not know is ignored rather than
    /// refused: the API server accepts new ones as they are added, and the Service works without.
    static func decode(_ field: Field?) throws -> Self? {
        guard let text = try field?.string() else { return nil }
        return text == "PreferClose" ? .preferSameZone : Self(rawValue: text)
    }
}

extension EndpointSlice.Hints {
    /// `endpoints[].hints`; absent means none.
    init(_ field: Field?) throws {
        func names(_ key: String) throws -> Set<String> {
            Set(try field?.optional(key)?.list().map { try $0.required("name").string() } ?? [])
        }
        self.init(forZones: try names("forZones"), forNodes: try names("forNodes"))
    }
}

extension EndpointSlice.Endpoint {
    /// `targetRef.name` when `targetRef` is a Pod.
    static func podName(_ field: Field) throws -> String? {
        guard let target = try field.optional("targetRef"), try target.optional("kind")?.string() == "Pod" else { return nil }
        return try target.optional("name")?.string()
    }
}

extension ClusterNode {
    init(_ object: Field) throws {
        let metadata = try object.required("metadata")
        let taints = try object.optional("spec")?.optional("taints")?.list() ?? []
        self.init(
            name: try metadata.required("name").name(.dns1123Subdomain),
            labels: try metadata.optional("labels")?.stringMap() ?? [:],
            isBeingDeleted: try metadata.optional("deletionTimestamp") != nil,
            taints: try taints.map { taint in
                Taint(key: try taint.required("key").string(), value: try taint.optional("value")?.string() ?? "",
                      effect: try taint.optional("effect")?.string() ?? "")
            })
    }

    /// One v1 Node from the API's JSON: `decoder` is one of Foundation's `JSONDecoder`, at the
    /// object. `source` names it in errors.
    public init(apiObject decoder: any Decoder, source: String) throws(LoadError) {
        try self.init(apiObject: Field(json: decoder), source: source)
    }

    /// The same from a node Yams composed.
    public init(apiObject node: Yams.Node, source: String) throws(LoadError) {
        try self.init(apiObject: Field(node), source: source)
    }

    private init(apiObject object: Field, source: String) throws(LoadError) {
        do {
            self = try ClusterNode(object)
        } catch {
            // Only labels the problem reported here; a Node without a readable name is still named "Node".
            let name = (try? object.optional("metadata")?.optional("name")?.string()).flatMap { $0 }
            throw LoadError(problems: [.init(source: source, object: name.map { "Node \($0)" } ?? "Node", message: "\(error)")])
        }
    }
}

extension ManifestCollector {
    /// A `v1` Node from a manifest; nil, with the problem recorded, when it cannot be used.
    mutating func node(_ object: Field, source: String) -> ClusterNode? {
        let node: ClusterNode
        do {
            node = try ClusterNode(object)
        } catch {
            problem(in: source, object: "Node at \(object.location ?? "?")", "\(error)")
            return nil
        }
        if state.node(named: node.name) != nil {
            problem(in: source, object: "Node \(node.name)", "defined more than once")
            return nil
        }
        return node
    }
}
