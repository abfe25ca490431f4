import IPVS
import Testing
@testable import Proxy

/// One rule of the desired-state computation, as input objects and the table they produce.
struct DesiredCase: Sendable, CustomTestStringConvertible {
    var name: String
    var services: [Service]
    var slices: [EndpointSlice] = []
    /// Virtual server → its real servers.
    var table: [String: [String]]
    var addresses: [String]

    var testDescription: String { name }
}

private let web = slice("web-1", service: "web", endpoints: [endpoint("10.244.0.5", node: "node-a"),
                                                           endpoint("10.244.1.6", node: "node-b")])
private let both = ["10.244.0.5:8080", "10.244.1.6:8080"]

/// The virtual server that in-cluster clients of an externalTrafficPolicy Local port use, as `summary` names it.
func inClusterMark(_ name: String) -> String {
    "\(VirtualServerKey.firewallMark(.inet, InClusterFirewallMarks.assign([name])[name]!))"
}

let desiredCases: [DesiredCase] = [
    DesiredCase(
        name: "ClusterIP: one virtual server per port, ready endpoints",
        services: [service("web")], slices: [web],
        table: ["TCP 10.96.0.10:80": both], addresses: ["10.96.0.10"]),
    DesiredCase(
        name: "NodePort: also one per node address of the service's family",
        services: [service("web", type: .nodePort, ports: [Service.Port(port: 80, nodePort: 30080)])], slices: [web],
        table: ["TCP 10.96.0.10:80": both, "TCP 192.168.1.10:30080": both], addresses: ["10.96.0.10"]),
    DesiredCase(
        name: "LoadBalancer: cluster IP, node ports and the ingress IP",
        services: [service("web", type: .loadBalancer, ports: [Service.Port(port: 80, nodePort: 30080)],
                           loadBalancer: [.init(ip: ip("203.0.113.7"))])], slices: [web],
        table: ["TCP 10.96.0.10:80": both, "TCP 192.168.1.10:30080": both, "TCP 203.0.113.7:80": both],
        addresses: ["10.96.0.10", "203.0.113.7"]),
    DesiredCase(
        name: "LoadBalancer without node ports (allocateLoadBalancerNodePorts: false)",
        services: [service("web", type: .loadBalancer, loadBalancer: [.init(ip: ip("203.0.113.7"))])], slices: [web],
        table: ["TCP 10.96.0.10:80": both, "TCP 203.0.113.7:80": both], addresses: ["10.96.0.10", "203.0.113.7"]),
    DesiredCase(
        name: "LoadBalancer ingress with ipMode Proxy is not claimed",
        services: [service("web", type: .loadBalancer, loadBalancer: [.init(ip: ip("203.0.113.7"), ipMode: .proxy)])],
        slices: [web], table: ["TCP 10.96.0.10:80": both], addresses: ["10.96.0.10"]),
    DesiredCase(
        name: "status.loadBalancer is ignored unless the type is LoadBalancer",
        services: [service("web", loadBalancer: [.init(ip: ip("203.0.113.7"))])], slices: [web],
        table: ["TCP 10.96.0.10:80": both], addresses: ["10.96.0.10"]),
    DesiredCase(
        name: "externalIPs on a ClusterIP service",
        services: [service("web", externalIPs: ["198.51.100.4"])], slices: [web],
        table: ["TCP 10.96.0.10:80": both, "TCP 198.51.100.4:80": both], addresses: ["10.96.0.10", "198.51.100.4"]),
    DesiredCase(
        name: "ExternalName: nothing",
        services: [service("db", type: .externalName, clusterIPs: [])], table: [:], addresses: []),
    DesiredCase(
        name: "headless: nothing, even with endpoints",
        services: [service("web", clusterIPs: [], headless: true)], slices: [web], table: [:], addresses: []),
    DesiredCase(
        name: "service without endpoints still gets its virtual server",
        services: [service("web")], table: ["TCP 10.96.0.10:80": []], addresses: ["10.96.0.10"]),
    DesiredCase(
        name: "multi-port: slice ports are matched by name, so named targetPorts work",
        services: [service("web", ports: [Service.Port(name: "http", port: 80, targetPort: .name("web")),
                                          Service.Port(name: "metrics", port: 9090, targetPort: .number(9100))])],
        slices: [slice("web-1", service: "web",
                       ports: [EndpointSlice.Port(name: "metrics", port: 9100), EndpointSlice.Port(name: "http", port: 8080)],
                       endpoints: [endpoint("10.244.0.5")])],
        table: ["TCP 10.96.0.10:80": ["10.244.0.5:8080"], "TCP 10.96.0.10:9090": ["10.244.0.5:9100"]],
        addresses: ["10.96.0.10"]),
    DesiredCase(
        name: "ports are matched by protocol too: DNS over UDP and TCP",
        services: [service("dns", ports: [Service.Port(name: "dns", protocol: .udp, port: 53),
                                          Service.Port(name: "dns-tcp", protocol: .tcp, port: 53)])],
        slices: [slice("dns-1", service: "dns",
                       ports: [EndpointSlice.Port(name: "dns", port: 5353, protocol: .udp),
                               EndpointSlice.Port(name: "dns-tcp", port: 5354, protocol: .tcp),
                               EndpointSlice.Port(name: "dns", port: 9999, protocol: .tcp)],
                       endpoints: [endpoint("10.244.0.9")])],
        table: ["UDP 10.96.0.10:53": ["10.244.0.9:5353"], "TCP 10.96.0.10:53": ["10.244.0.9:5354"]],
        addresses: ["10.96.0.10"]),
    DesiredCase(
        name: "SCTP",
        services: [service("sig", ports: [Service.Port(protocol: .sctp, port: 3868)])],
        slices: [slice("sig-1", service: "sig", ports: [EndpointSlice.Port(port: 3868, protocol: .sctp)],
                       endpoints: [endpoint("10.244.0.7")])],
        table: ["SCTP 10.96.0.10:3868": ["10.244.0.7:3868"]], addresses: ["10.96.0.10"]),
    DesiredCase(
        name: "a named service port does not match an unnamed slice port",
        services: [service("web", ports: [Service.Port(name: "http", port: 80)])], slices: [web],
        table: ["TCP 10.96.0.10:80": []], addresses: ["10.96.0.10"]),
    DesiredCase(
        name: "a slice port without a number is unusable",
        services: [service("web")],
        slices: [slice("web-1", service: "web", ports: [EndpointSlice.Port(port: nil)], endpoints: [endpoint("10.244.0.5")])],
        table: ["TCP 10.96.0.10:80": []], addresses: ["10.96.0.10"]),
    DesiredCase(
        name: "selector-less service with a hand-made slice, in another namespace",
        services: [service("legacy", namespace: "ops", clusterIPs: ["10.96.5.5"], ports: [Service.Port(port: 5432)])],
        slices: [slice("legacy-manual", service: "legacy", namespace: "ops", ports: [EndpointSlice.Port(port: 5432)],
                       endpoints: [endpoint("192.168.50.20")]),
                 slice("legacy-elsewhere", service: "legacy", namespace: "default", ports: [EndpointSlice.Port(port: 5432)],
                       endpoints: [endpoint("192.168.50.99")])],
        table: ["TCP 10.96.5.5:5432": ["192.168.50.20:5432"]], addresses: ["10.96.5.5"]),
    DesiredCase(
        name: "endpoints of several slices are merged, duplicates once",
        services: [service("web")],
        slices: [web, slice("web-2", service: "web", endpoints: [endpoint("10.244.1.6"), endpoint("10.244.2.7")])],
        table: ["TCP 10.96.0.10:80": ["10.244.0.5:8080", "10.244.1.6:8080", "10.244.2.7:8080"]],
        addresses: ["10.96.0.10"]),
    DesiredCase(
        name: "a duplicate keeps its best condition",
        services: [service("web")],
        slices: [slice("web-1", service: "web", endpoints: [endpoint("10.244.0.5", .notReady)]),
                 slice("web-2", service: "web", endpoints: [endpoint("10.244.0.5")])],
        table: ["TCP 10.96.0.10:80": ["10.244.0.5:8080"]], addresses: ["10.96.0.10"]),
    DesiredCase(
        name: "only the first of an endpoint's addresses is used",
        services: [service("web")],
        slices: [slice("web-1", service: "web", endpoints: [
            EndpointSlice.Endpoint(addresses: [ip("10.244.0.5"), ip("10.244.0.50")])])],
        table: ["TCP 10.96.0.10:80": ["10.244.0.5:8080"]], addresses: ["10.96.0.10"]),
    DesiredCase(
        name: "dual-stack: each family gets its own endpoints and node addresses",
        services: [service("web", type: .nodePort, clusterIPs: ["10.96.0.10", "fd00:96::10"],
                           ports: [Service.Port(port: 80, nodePort: 30080)])],
        slices: [web, slice("web-v6", service: "web", type: .ipv6, endpoints: [endpoint("fd00:244::5")])],
        table: ["TCP 10.96.0.10:80": both, "TCP 192.168.1.10:30080": both,
                "TCP [fd00:96::10]:80": ["[fd00:244::5]:8080"], "TCP [fd00:1::10]:30080": ["[fd00:244::5]:8080"]],
        addresses: ["10.96.0.10", "fd00:96::10"]),
    DesiredCase(
        name: "IPv6-only service ignores IPv4 slices and addresses",
        services: [service("web", type: .nodePort, clusterIPs: ["fd00:96::10"], ports: [Service.Port(port: 80, nodePort: 30080)])],
        slices: [web],
        table: ["TCP [fd00:96::10]:80": [], "TCP [fd00:1::10]:30080": []], addresses: ["fd00:96::10"]),
    DesiredCase(
        name: "externalTrafficPolicy Local: node ports, external and LB IPs get local endpoints only",
        services: [service("web", type: .loadBalancer, ports: [Service.Port(port: 80, nodePort: 30080)],
                           externalIPs: ["198.51.100.4"], externalPolicy: .local,
                           loadBalancer: [.init(ip: ip("203.0.113.7"))])],
        slices: [web],
        table: ["TCP 10.96.0.10:80": both, "TCP 192.168.1.10:30080": ["10.244.0.5:8080"],
                "TCP 198.51.100.4:80": ["10.244.0.5:8080"], "TCP 203.0.113.7:80": ["10.244.0.5:8080"],
                inClusterMark("default/web/TCP/IPv4"): both],
        addresses: ["10.96.0.10", "198.51.100.4", "203.0.113.7"]),
    DesiredCase(
        name: "externalTrafficPolicy Local without local endpoints: no real servers",
        services: [service("web", type: .nodePort, ports: [Service.Port(port: 80, nodePort: 30080)], externalPolicy: .local)],
        slices: [slice("web-1", service: "web", endpoints: [endpoint("10.244.1.6", node: "node-b")])],
        table: ["TCP 10.96.0.10:80": ["10.244.1.6:8080"], "TCP 192.168.1.10:30080": [],
                inClusterMark("default/web/TCP/IPv4"): ["10.244.1.6:8080"]],
        addresses: ["10.96.0.10"]),
    DesiredCase(
        name: "internalTrafficPolicy Local: the cluster IP gets local endpoints only",
        services: [service("web", type: .nodePort, ports: [Service.Port(port: 80, nodePort: 30080)], internalPolicy: .local)],
        slices: [web],
        table: ["TCP 10.96.0.10:80": ["10.244.0.5:8080"], "TCP 192.168.1.10:30080": both], addresses: ["10.96.0.10"]),
    DesiredCase(
        name: "ready endpoints only, when there are any",
        services: [service("web")],
        slices: [slice("web-1", service: "web", endpoints: [
            endpoint("10.244.0.5"), endpoint("10.244.0.6", .servingTerminating), endpoint("10.244.0.7", .notReady)])],
        table: ["TCP 10.96.0.10:80": ["10.244.0.5:8080"]], addresses: ["10.96.0.10"]),
    DesiredCase(
        name: "no ready endpoint: fall back to serving and terminating ones",
        services: [service("web")],
        slices: [slice("web-1", service: "web", endpoints: [
            endpoint("10.244.0.6", .servingTerminating), endpoint("10.244.0.7", .notReady),
            endpoint("10.244.0.8", EndpointSlice.Conditions(ready: false, serving: false, terminating: true))])],
        table: ["TCP 10.96.0.10:80": ["10.244.0.6:8080"]], addresses: ["10.96.0.10"]),
    DesiredCase(
        name: "never not-ready, non-terminating endpoints",
        services: [service("web")],
        slices: [slice("web-1", service: "web", endpoints: [
            endpoint("10.244.0.7", .notReady), endpoint("10.244.0.9", EndpointSlice.Conditions(ready: false, serving: true))])],
        table: ["TCP 10.96.0.10:80": []], addresses: ["10.96.0.10"]),
    DesiredCase(
        name: "the fallback is per locality: local terminating beats remote ready for Local policy",
        services: [service("web", type: .nodePort, ports: [Service.Port(port: 80, nodePort: 30080)], externalPolicy: .local)],
        slices: [slice("web-1", service: "web", endpoints: [
            endpoint("10.244.0.6", .servingTerminating, node: "node-a"), endpoint("10.244.1.6", node: "node-b")])],
        table: ["TCP 10.96.0.10:80": ["10.244.1.6:8080"], "TCP 192.168.1.10:30080": ["10.244.0.6:8080"],
                inClusterMark("default/web/TCP/IPv4"): ["10.244.1.6:8080"]],
        addresses: ["10.96.0.10"]),
    DesiredCase(
        name: "services for another proxy are skipped",
        services: [service("web", labels: [WellKnown.serviceProxyName: "other"])], slices: [web],
        table: [:], addresses: []),
    DesiredCase(
        name: "slices for another proxy are skipped",
        services: [service("web")],
        slices: [EndpointSlice(metadata: ObjectMeta(name: "x", labels: [WellKnown.serviceName: "web",
                                                                       WellKnown.serviceProxyName: "other"]),
                               addressType: .ipv4, endpoints: [endpoint("10.244.0.5")], ports: [EndpointSlice.Port(port: 8080)])],
        table: ["TCP 10.96.0.10:80": []], addresses: ["10.96.0.10"]),
]

@Suite struct DesiredStateTests {
    @Test(arguments: desiredCases)
    func table(_ c: DesiredCase) {
        let state = DesiredState(c.services, c.slices)
        #expect(state.summary == c.table)
        #expect(state.addresses == Set(c.addresses.map(ip)))
    }

    @Test func virtualServerDefaults() throws {
        let state = DesiredState([service("web")], [web])
        let want = try #require(state.virtualServers[tcp("10.96.0.10", 80)])
        #expect(want.server == VirtualServer(key: tcp("10.96.0.10", 80), scheduler: "rr", flags: [], timeout: 0,
                                             netmask: 0xffff_ffff))
        #expect(want.realServers[rkey("10.244.0.5", 8080)] == RealServer(key: rkey("10.244.0.5", 8080),
                                                                        forwarding: .masquerade, weight: 1))
        #expect(want.service.description == "default/web")
        #expect(state.warnings.isEmpty)
    }

    @Test func sessionAffinityIsPersistencePerClientAddress() throws {
        let state = DesiredState([service("web", type: .nodePort, clusterIPs: ["10.96.0.10", "fd00:96::10"],
                                          ports: [Service.Port(port: 80, nodePort: 30080)],
                                          affinity: .clientIP(timeoutSeconds: 600))])
        #expect(state.virtualServers.count == 4)
        for (key, want) in state.virtualServers {
            #expect(want.server.flags == .persistent)
            #expect(want.server.timeout == 600)
            #expect(want.server.netmask == (key.family == .inet ? 0xffff_ffff : 128))
        }
    }

    @Test func nodeDefaultScheduler() {
        var node = nodeA
        node.scheduler = .weightedLeastConnection
        let state = DesiredState([service("web")], node: node)
        #expect(state.virtualServers.values.map(\.server.scheduler) == ["wlc"])
    }

    @Test(arguments: [("lc", "lc"), ("wrr", "wrr"), ("twos", "twos")])
    func schedulerAnnotation(_ annotation: String, _ expected: String) {
        let state = DesiredState([service("web", annotations: [WellKnown.schedulerAnnotation: annotation])])
        #expect(state.virtualServers.values.map(\.server.scheduler) == [expected])
        #expect(state.warnings.isEmpty)
    }

    @Test func unknownSchedulerAnnotationWarnsAndUsesTheDefault() {
        let state = DesiredState([service("web", annotations: [WellKnown.schedulerAnnotation: "fastest"])])
        #expect(state.virtualServers.values.map(\.server.scheduler) == ["rr"])
        #expect(state.warnings.map(\.description) == [
            "Service default/web: annotation kipvs.io/scheduler: unknown IPVS scheduler \"fastest\"; using rr",
        ])
    }

    @Test func maglevHashesTheSourcePortToo() {
        let state = DesiredState([service("web", annotations: [WellKnown.schedulerAnnotation: "mh"])])
        #expect(state.virtualServers.values.map(\.server.flags) == [.schedulerPort])
    }

    @Test func conflictingVirtualServersGoToTheFirstServiceByName() {
        let state = DesiredState([service("zeta", clusterIPs: ["10.96.0.20"], externalIPs: ["198.51.100.4"]),
                                  service("alpha", clusterIPs: ["10.96.0.10"], externalIPs: ["198.51.100.4"])])
        #expect(state.virtualServers[tcp("198.51.100.4", 80)]?.service.name == "alpha")
        #expect(state.warnings.map(\.description) == [
            "Service default/zeta: TCP 198.51.100.4:80 is already used by default/alpha; ignored for default/zeta",
        ])
    }

    @Test func addressesOfAnUnservedFamilyAreDroppedWithAWarning() {
        let state = DesiredState([service("web", externalIPs: ["2001:db8::4"])])
        #expect(state.summary.keys.sorted() == ["TCP 10.96.0.10:80"])
        #expect(state.addresses == [ip("10.96.0.10")])
        #expect(state.warnings.map(\.description) == [
            "Service default/web: externalIPs: 2001:db8::4 ignored: the Service has no IPv6 cluster IP",
        ])
    }

    @Test func serviceWithoutClusterIPWarns() {
        let state = DesiredState([service("web", clusterIPs: [])])
        #expect(state.virtualServers.isEmpty)
        #expect(state.warnings.map(\.description) == ["Service default/web: has no cluster IP; nothing to proxy"])
    }

    @Test func emptyNodeNameMakesNothingLocal() {
        let state = DesiredState([service("web", internalPolicy: .local)],
                                 [slice("web-1", service: "web", endpoints: [endpoint("10.244.0.5")])],
                                 node: NodeConfig(nodeName: ""))
        #expect(state.summary == ["TCP 10.96.0.10:80": []])
    }

    @Test func sameServiceListingAnAddressTwiceIsNotAConflict() {
        let state = DesiredState([service("web", externalIPs: ["198.51.100.4", "198.51.100.4"])])
        #expect(state.virtualServers.count == 2)
        #expect(state.warnings.isEmpty)
    }
}
