import IPVS

/// A `discovery.k8s.io/v1` EndpointSlice, reduced to what a proxy needs.
public struct EndpointSlice: Hashable, Sendable {
    public enum AddressType: String, Hashable, Sendable, CaseIterable {
        case ipv4 = "IPv4"
        case ipv6 = "IPv6"
        /// Not routable by a proxy; such slices are kept but contribute nothing.
        case fqdn = "FQDN"

        public var family: IPAddress.Family? {
            switch self {
            case .ipv4: .inet
            case .ipv6: .inet6
            case .fqdn: nil
            }
        }
    }

    /// Conditions with the API's nil defaults already applied: a missing `ready` or `serving`
    /// means true, a missing `terminating` means false (as kube-proxy reads them).
    public struct Conditions: Hashable, Sendable {
        public var ready: Bool
        public var serving: Bool
        public var terminating: Bool

        public init(ready: Bool = true, serving: Bool = true, terminating: Bool = false) {
            self.ready = ready
            self.serving = serving
            self.terminating = terminating
        }

        public static let ready = Conditions()
        /// A pod shutting down that still passes its readiness probe.
        public static let servingTerminating = Conditions(ready: false, serving: true, terminating: true)
        public static let notReady = Conditions(ready: false, serving: false, terminating: false)
    }

    /// `endpoints[].hints`: where the EndpointSlice controller wants the endpoint used.
    public struct Hints: Hashable, Sendable {
        /// `forZones[].name`
        public var forZones: Set<String>
        /// `forNodes[].name`
        public var forNodes: Set<String>

        public init(forZones: Set<String> = [], forNodes: Set<String> = []) {
            self.forZones = forZones
            self.forNodes = forNodes
        }
    }

    public struct Endpoint: Hashable, Sendable {
        public var addresses: [IPAddress]
        public var conditions: Conditions
        public var nodeName: String?
        /// `zone`: the zone of the endpoint's node.
        public var zone: String?
        public var hints: Hints
        /// `targetRef.name` when the target is a Pod.
        public var podName: String?

        public init(addresses: [IPAddress], conditions: Conditions = .ready, nodeName: String? = nil,
                    zone: String? = nil, hints: Hints = Hints(), podName: String? = nil) {
            self.addresses = addresses
            self.conditions = conditions
            self.nodeName = nodeName
            self.zone = zone
            self.hints = hints
            self.podName = podName
        }
    }

    public struct Port: Hashable, Sendable {
        /// Empty when unnamed; matches the Service port of the same name.
        public var name: String
        /// nil means "all ports", which a proxy cannot use.
        public var port: UInt16?
        public var `protocol`: IPProtocol

        public init(name: String = "", port: UInt16?, protocol: IPProtocol = .tcp) {
            self.name = name
            self.port = port
            self.protocol = `protocol`
        }
    }

    public var metadata: ObjectMeta
    public var addressType: AddressType
    public var endpoints: [Endpoint]
    public var ports: [Port]

    public init(metadata: ObjectMeta, addressType: AddressType, endpoints: [Endpoint] = [], ports: [Port] = []) {
        self.metadata = metadata
        self.addressType = addressType
        self.endpoints = endpoints
        self.ports = ports
    }

    /// The Service this slice belongs to (label `kubernetes.io/service-name`).
    public var serviceName: String? { metadata.labels[WellKnown.serviceName] }

    /// Slices that kube-proxy's informer would not see.
    public var isForAnotherProxy: Bool {
        metadata.isForAnotherProxy || metadata.labels[WellKnown.headless] != nil
    }
}
