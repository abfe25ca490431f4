import IPVS

/// A Kubernetes v1 Service, reduced to what a proxy needs. Fields are flattened from
/// `spec` and `status`; every value is already validated.
public struct Service: Hashable, Sendable {
    public enum ServiceType: String, Hashable, Sendable, CaseIterable {
        case clusterIP = "ClusterIP"
        case nodePort = "NodePort"
        case loadBalancer = "LoadBalancer"
        case externalName = "ExternalName"
    }

    public enum TrafficPolicy: String, Hashable, Sendable, CaseIterable {
        case cluster = "Cluster"
        case local = "Local"
    }

    /// `spec.trafficDistribution`; the older `PreferClose` means `PreferSameZone`.
    public enum TrafficDistribution: String, Hashable, Sendable, CaseIterable {
        case preferSameZone = "PreferSameZone"
        case preferSameNode = "PreferSameNode"
    }

    public enum SessionAffinity: Hashable, Sendable {
        case none
        case clientIP(timeoutSeconds: UInt32)

        /// Kubernetes' default for `sessionAffinityConfig.clientIP.timeoutSeconds` (3 hours).
        public static let defaultTimeoutSeconds: UInt32 = 10800
    }

    /// `spec.ports[].targetPort`: a number or the name of a container port.
    public enum TargetPort: Hashable, Sendable, CustomStringConvertible {
        case number(UInt16)
        case name(String)

        public var description: String {
            switch self {
            case .number(let n): "\(n)"
            case .name(let s): s
            }
        }
    }

    public struct Port: Hashable, Sendable {
        /// Empty for the single unnamed port.
        public var name: String
        public var `protocol`: IPProtocol
        public var port: UInt16
        public var targetPort: TargetPort
        public var nodePort: UInt16?

        public init(name: String = "", protocol: IPProtocol = .tcp, port: UInt16,
                    targetPort: TargetPort? = nil, nodePort: UInt16? = nil) {
            self.name = name
            self.protocol = `protocol`
            self.port = port
            self.targetPort = targetPort ?? .number(port)
            self.nodePort = nodePort
        }
    }

    /// `status.loadBalancer.ingress[]` entries that carry an IP.
    public struct LoadBalancerIngress: Hashable, Sendable {
        public enum IPMode: String, Hashable, Sendable, CaseIterable {
            /// The load balancer delivers packets with the destination still set to the LB IP.
            case vip = "VIP"
            /// The load balancer rewrites the destination; the node must not claim the LB IP.
            case proxy = "Proxy"
        }

        public var ip: IPAddress
        public var ipMode: IPMode

        public init(ip: IPAddress, ipMode: IPMode = .vip) {
            self.ip = ip
            self.ipMode = ipMode
        }
    }

    public var metadata: ObjectMeta
    public var type: ServiceType
    /// `spec.clusterIPs` (or `spec.clusterIP` when the list is absent); empty when headless or unset.
    public var clusterIPs: [IPAddress]
    /// `clusterIP: None`.
    public var isHeadless: Bool
    public var ports: [Port]
    public var externalIPs: [IPAddress]
    public var sessionAffinity: SessionAffinity
    public var externalTrafficPolicy: TrafficPolicy
    public var internalTrafficPolicy: TrafficPolicy
    /// As declared; the families actually served follow `clusterIPs`.
    public var ipFamilies: [IPAddress.Family]
    public var loadBalancerIngress: [LoadBalancerIngress]
    /// `spec.loadBalancerSourceRanges`: clients allowed to reach the load-balancer IPs; empty allows all.
    public var loadBalancerSourceRanges: [CIDR]
    /// `spec.healthCheckNodePort`: where kipvs answers load-balancer health checks (externalTrafficPolicy Local).
    public var healthCheckNodePort: UInt16?
    public var trafficDistribution: TrafficDistribution?

    public init(metadata: ObjectMeta, type: ServiceType = .clusterIP, clusterIPs: [IPAddress] = [],
                isHeadless: Bool = false, ports: [Port] = [], externalIPs: [IPAddress] = [],
                sessionAffinity: SessionAffinity = .none, externalTrafficPolicy: TrafficPolicy = .cluster,
                internalTrafficPolicy: TrafficPolicy = .cluster, ipFamilies: [IPAddress.Family] = [],
                loadBalancerIngress: [LoadBalancerIngress] = [], loadBalancerSourceRanges: [CIDR] = [],
                healthCheckNodePort: UInt16? = nil, trafficDistribution: TrafficDistribution? = nil) {
        self.metadata = metadata
        self.type = type
        self.clusterIPs = clusterIPs
        self.isHeadless = isHeadless
        self.ports = ports
        self.externalIPs = externalIPs
        self.sessionAffinity = sessionAffinity
        self.externalTrafficPolicy = externalTrafficPolicy
        self.internalTrafficPolicy = internalTrafficPolicy
        self.ipFamilies = ipFamilies.isEmpty ? clusterIPs.map(\.family) : ipFamilies
        self.loadBalancerIngress = loadBalancerIngress
        self.loadBalancerSourceRanges = loadBalancerSourceRanges
        self.healthCheckNodePort = healthCheckNodePort
        self.trafficDistribution = trafficDistribution
    }

    /// Whether NodePort virtual servers exist for this Service (LoadBalancer implies NodePort).
    public var hasNodePorts: Bool { type == .nodePort || type == .loadBalancer }
}
