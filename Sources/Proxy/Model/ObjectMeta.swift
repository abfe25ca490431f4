/// The part of Kubernetes `metadata` that kipvs reads.
public struct ObjectMeta: Hashable, Sendable {
    public var name: String
    public var namespace: String
    public var labels: [String: String]
    public var annotations: [String: String]

    public init(name: String, namespace: String = "default",
                labels: [String: String] = [:], annotations: [String: String] = [:]) {
        self.name = name
        self.namespace = namespace
        self.labels = labels
        self.annotations = annotations
    }

    /// `default/web`
    public var qualifiedName: String { "\(namespace)/\(name)" }
}

/// Well-known label and annotation keys.
public enum WellKnown {
    /// Set on Services (and their slices) that another proxy implementation handles.
    public static let serviceProxyName = "service.kubernetes.io/service-proxy-name"
    /// Set by the EndpointSlice controller on slices of headless Services.
    public static let headless = "service.kubernetes.io/headless"
    /// Names the Service an EndpointSlice belongs to.
    public static let serviceName = "kubernetes.io/service-name"
    /// Per-Service IPVS scheduler override.
    public static let schedulerAnnotation = "kipvs.io/scheduler"
}

extension ObjectMeta {
    /// kube-proxy watches with the selector `!service.kubernetes.io/service-proxy-name`
    /// (and `!service.kubernetes.io/headless` for slices); objects outside it are not ours.
    public var isForAnotherProxy: Bool {
        labels[WellKnown.serviceProxyName] != nil
    }
}
