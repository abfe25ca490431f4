/// A v1 Node, reduced to what a proxy needs: the zone its topology label names, and whether the
/// node is going away (for `/healthz`). Named apart from the YAML library's `Node`.
public struct ClusterNode: Hashable, Sendable {
    /// `spec.taints[]`
    public struct Taint: Hashable, Sendable {
        public var key: String
        public var value: String
        /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
        public var effect: String

        public init(key: String, value: String = "", effect: String = "NoSchedule") {
            self.key = key
            self.value = value
            self.effect = effect
        }
    }

    public var name: String
    public var labels: [String: String]
    /// `metadata.deletionTimestamp` is set: the node is being deleted.
    public var isBeingDeleted: Bool
    public var taints: [Taint]

    public init(name: String, labels: [String: String] = [:], isBeingDeleted: Bool = false, taints: [Taint] = []) {
        self.name = name
        self.labels = labels
        self.isBeingDeleted = isBeingDeleted
        self.taints = taints
    }

    /// `topology.kubernetes.io/zone`; nil when the label is absent.
    public var zone: String? { labels[WellKnown.zoneLabel] }

    /// kube-proxy's rule (KEP-3836): a node being deleted, or one the cluster autoscaler is about
    /// to remove, should get no new load-balancer traffic, so `/healthz` fails on it.
    public var isEligible: Bool {
        !isBeingDeleted && !taints.contains { $0.key == WellKnown.toBeDeletedTaint }
    }
}

extension WellKnown {
    /// The Node label that names its zone, matched against zone hints.
    public static let zoneLabel = "topology.kubernetes.io/zone"
    /// Set by the cluster autoscaler on a node it is about to delete.
    public static let toBeDeletedTaint = "ToBeDeletedByClusterAutoscaler"
}
