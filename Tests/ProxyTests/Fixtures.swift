import IPVS
@testable import Proxy

func ip(_ text: String) -> IPAddress {
    guard let address = IPAddress(text) else { fatalError("bad test address \(text)") }
    return address
}

func tcp(_ address: String, _ port: UInt16) -> VirtualServerKey { .service(.tcp, ip(address), port) }
func udp(_ address: String, _ port: UInt16) -> VirtualServerKey { .service(.udp, ip(address), port) }

func real(_ address: String, _ port: UInt16, weight: Int32 = 1) -> RealServer {
    RealServer(address: ip(address), port: port, weight: weight)
}

func rkey(_ address: String, _ port: UInt16) -> RealServerKey { RealServerKey(address: ip(address), port: port) }

let nodeA = NodeConfig(nodeName: "node-a", nodePortAddresses: [ip("192.168.1.10"), ip("fd00:1::10")])

func service(_ name: String, namespace: String = "default", type: Service.ServiceType = .clusterIP,
             clusterIPs: [String] = ["10.96.0.10"], ports: [Service.Port] = [Service.Port(port: 80)],
             externalIPs: [String] = [], affinity: Service.SessionAffinity = .none,
             externalPolicy: Service.TrafficPolicy = .cluster, internalPolicy: Service.TrafficPolicy = .cluster,
             loadBalancer: [Service.LoadBalancerIngress] = [], annotations: [String: String] = [:],
             labels: [String: String] = [:], headless: Bool = false) -> Service {
    Service(metadata: ObjectMeta(name: name, namespace: namespace, labels: labels, annotations: annotations),
            type: type, clusterIPs: clusterIPs.map(ip), isHeadless: headless, ports: ports,
            externalIPs: externalIPs.map(ip), sessionAffinity: affinity, externalTrafficPolicy: externalPolicy,
            internalTrafficPolicy: internalPolicy, loadBalancerIngress: loadBalancer)
}

func endpoint(_ address: String, _ conditions: EndpointSlice.Conditions = .ready,
              node: String? = nil) -> EndpointSlice.Endpoint {
    EndpointSlice.Endpoint(addresses: [ip(address)], conditions: conditions, nodeName: node)
}

func slice(_ name: String, service: String, namespace: String = "default", type: EndpointSlice.AddressType = .ipv4,
           ports: [EndpointSlice.Port] = [EndpointSlice.Port(port: 8080)],
           endpoints: [EndpointSlice.Endpoint]) -> EndpointSlice {
    EndpointSlice(metadata: ObjectMeta(name: name, namespace: namespace, labels: [WellKnown.serviceName: service]),
                  addressType: type, endpoints: endpoints, ports: ports)
}

extension DesiredState {
    /// `["TCP 10.96.0.10:80": ["10.244.0.5:8080"]]`: the table in a form a test can spell out.
    var summary: [String: [String]] {
        Dictionary(uniqueKeysWithValues: virtualServers.map { key, value in
            ("\(key)", value.realServers.keys.sorted().map(\.description))
        })
    }

    init(_ services: [Service], _ slices: [EndpointSlice] = [], node: NodeConfig = nodeA) {
        self.init(ClusterState(services: services, endpointSlices: slices), node: node)
    }
}
