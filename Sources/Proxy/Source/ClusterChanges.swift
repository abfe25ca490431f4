/// Names a namespaced object: `default/web`.
public struct ObjectName: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var namespace: String
    public var name: String

    public init(namespace: String, name: String) {
        self.namespace = namespace
        self.name = name
    }

    public init(_ metadata: ObjectMeta) {
        self.init(namespace: metadata.namespace, name: metadata.name)
    }

    public var description: String { "\(namespace)/\(name)" }

    public static func < (a: ObjectName, b: ObjectName) -> Bool { (a.namespace, a.name) < (b.namespace, b.name) }
}

/// The objects a source saw change since it was last asked: for each, its latest version, or nil
/// when it was deleted. Objects not named are as they were.
public struct ClusterChanges: Hashable, Sendable {
    public var services: [ObjectName: Service?]
    public var endpointSlices: [ObjectName: EndpointSlice?]
    public var nodes: [String: ClusterNode?]

    public init(services: [ObjectName: Service?] = [:], endpointSlices: [ObjectName: EndpointSlice?] = [:],
                nodes: [String: ClusterNode?] = [:]) {
        self.services = services
        self.endpointSlices = endpointSlices
        self.nodes = nodes
    }

    /// Every object of `state`, as a first answer names them.
    public init(adding state: ClusterState) {
        self = Self.between(ClusterState(), state)
    }

    public var isEmpty: Bool { services.isEmpty && endpointSlices.isEmpty && nodes.isEmpty }

    public var count: Int { services.count + endpointSlices.count + nodes.count }

    /// These changes followed by `later`: the later version of an object wins.
    public mutating func merge(_ later: ClusterChanges) {
        services.merge(later.services) { _, new in new }
        endpointSlices.merge(later.endpointSlices) { _, new in new }
        nodes.merge(later.nodes) { _, new in new }
    }

    /// What turns `old` into `new`; objects equal in both are left out.
    public static func between(_ old: ClusterState, _ new: ClusterState) -> ClusterChanges {
        ClusterChanges(
            services: diff(old.services, new.services) { ObjectName($0.metadata) },
            endpointSlices: diff(old.endpointSlices, new.endpointSlices) { ObjectName($0.metadata) },
            nodes: diff(old.nodes, new.nodes) { $0.name })
    }

    private static func diff<Object: Equatable, Key: Hashable>(_ old: [Object], _ new: [Object],
                                                               key: (Object) -> Key) -> [Key: Object?] {
        let before = Dictionary(old.map { (key($0), $0) }, uniquingKeysWith: { _, last in last })
        var changes: [Key: Object?] = [:]
        var seen = Set<Key>()
        for object in new {
            let name = key(object)
            seen.insert(name)
            if before[name] != object { changes[name] = .some(object) }
        }
        for name in before.keys where !seen.contains(name) { changes[name] = .some(nil) }
        return changes
    }
}

/// Where the cluster's Services, EndpointSlices and Nodes come from.
public protocol ClusterSource: AnyObject {
    /// For logs: `file:/etc/kipvs/services.yaml`.
    var name: String { get }
    /// The objects that changed since the last call; nil while nothing did (or the first complete
    /// state is not there yet). The first answer names every object. A failure means the source's
    /// content could not be used; what was reported before stays.
    func poll() -> Result<ClusterChanges, LoadError>?
    /// What the source calls, from any thread, when `poll` may have something new. The sync loop
    /// sleeps until then, or until its own next deadline; a call with nothing new is harmless.
    func setWake(_ wake: @escaping @Sendable () -> Void)
}

extension ClusterState {
    /// This state with `changes` made, objects in name order (for one-off commands: the agent keeps
    /// its objects in a `ClusterObjects`).
    public func updated(with changes: ClusterChanges) -> ClusterState {
        var services = Dictionary(self.services.map { (ObjectName($0.metadata), $0) }, uniquingKeysWith: { _, last in last })
        var slices = Dictionary(endpointSlices.map { (ObjectName($0.metadata), $0) }, uniquingKeysWith: { _, last in last })
        var nodes = Dictionary(self.nodes.map { ($0.name, $0) }, uniquingKeysWith: { _, last in last })
        for (name, service) in changes.services { services[name] = service }
        for (name, slice) in changes.endpointSlices { slices[name] = slice }
        for (name, node) in changes.nodes { nodes[name] = node }
        return ClusterState(services: services.keys.sorted().map { services[$0]! },
                            endpointSlices: slices.keys.sorted().map { slices[$0]! },
                            nodes: nodes.keys.sorted().map { nodes[$0]! })
    }
}
