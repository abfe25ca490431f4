import IPVS
import Testing
@testable import Proxy

@Suite struct HealthCheckNodePortsTests {
    /// A LoadBalancer Service with `externalTrafficPolicy: Local` and a health-check node port.
    func local(_ name: String, namespace: String = "default", port: UInt16? = 30100,
               policy: Service.TrafficPolicy = .local, type: Service.ServiceType = .loadBalancer) -> Service {
        var web = service(name, namespace: namespace, type: type, ports: [Service.Port(port: 80, nodePort: 30080)],
                          externalPolicy: policy)
        web.healthCheckNodePort = port
        return web
    }

    func table(_ services: [Service], _ slices: [EndpointSlice] = [], node: String = "node-a") -> HealthCheckNodePorts {
        HealthCheckNodePorts(ClusterState(services: services, endpointSlices: slices), nodeName: node)
    }

    @Test func localEndpointsOfTheServiceAreCounted() {
        let result = table([local("web")], [slice("web-1", service: "web", endpoints: [
            endpoint("10.244.0.5", node: "node-a"), endpoint("10.244.0.6", node: "node-a"),
        ])])
        #expect(result.ports == [30100: HealthCheckNodePort(namespace: "default", name: "web", localEndpoints: 2)])
        #expect(result.warnings.isEmpty)
    }

    @Test func aServiceWithoutLocalEndpointsStillHasItsPort() {
        #expect(table([local("web")]).ports == [30100: HealthCheckNodePort(namespace: "default", name: "web", localEndpoints: 0)])
    }

    @Test func externalTrafficPolicyClusterIsIgnored() {
        let result = table([local("web", policy: .cluster)], [slice("web-1", service: "web", endpoints: [
            endpoint("10.244.0.5", node: "node-a"),
        ])])
        #expect(result.ports.isEmpty)
        #expect(result.warnings.isEmpty)
    }

    @Test(arguments: [Service.ServiceType.nodePort, .clusterIP])
    func onlyLoadBalancersGetAHealthCheck(_ type: Service.ServiceType) {
        #expect(table([local("web", type: type)]).ports.isEmpty)
    }

    @Test func aServiceWithoutPortIsIgnoredWithAWarning() {
        let result = table([local("web", port: nil)])
        #expect(result.ports.isEmpty)
        #expect(result.warnings.map(\.description) == [
            "Service default/web: externalTrafficPolicy Local without healthCheckNodePort; no health check served",
        ])
    }

    @Test func servicesKipvsDoesNotProxyAreIgnored() {
        var headless = local("web")
        headless.clusterIPs = []
        headless.isHeadless = true
        var other = local("other", port: 30101)
        other.metadata.labels[WellKnown.serviceProxyName] = "someone-else"
        #expect(table([headless, other]).ports.isEmpty)
    }

    @Test func endpointsOnOtherNodesAreNotCounted() {
        let result = table([local("web")], [slice("web-1", service: "web", endpoints: [
            endpoint("10.244.0.5", node: "node-a"), endpoint("10.244.1.6", node: "node-b"), endpoint("10.244.2.7"),
        ])])
        #expect(result.ports[30100]?.localEndpoints == 1)
    }

    @Test func anEmptyNodeNameHasNoLocalEndpoints() {
        let result = table([local("web")], [slice("web-1", service: "web", endpoints: [endpoint("10.244.2.7")])], node: "")
        #expect(result.ports[30100]?.localEndpoints == 0)
    }

    @Test func notReadyEndpointsAreNotCounted() {
        let result = table([local("web")], [slice("web-1", service: "web", endpoints: [
            endpoint("10.244.0.5", node: "node-a"),
            endpoint("10.244.0.6", .notReady, node: "node-a"),
            // Still serving while it shuts down: the node should fail its check all the same.
            endpoint("10.244.0.7", .servingTerminating, node: "node-a"),
        ])])
        #expect(result.ports[30100]?.localEndpoints == 1)
    }

    @Test func duplicatesAcrossSlicesAndPortsAreCountedOnce() {
        let ports = [EndpointSlice.Port(name: "http", port: 8080), EndpointSlice.Port(name: "https", port: 8443)]
        let result = table([local("web")], [
            slice("web-1", service: "web", ports: ports, endpoints: [endpoint("10.244.0.5", node: "node-a")]),
            slice("web-2", service: "web", ports: ports, endpoints: [endpoint("10.244.0.5", node: "node-a"),
                                                                       endpoint("10.244.0.6", node: "node-a")]),
        ])
        #expect(result.ports[30100]?.localEndpoints == 2)
    }

    @Test func bothFamiliesAreCounted() {
        let result = table([local("web")], [
            slice("web-v4", service: "web", endpoints: [endpoint("10.244.0.5", node: "node-a")]),
            slice("web-v6", service: "web", type: .ipv6, endpoints: [endpoint("fd00:244::5", node: "node-a")]),
        ])
        #expect(result.ports[30100]?.localEndpoints == 2)
    }

    @Test func slicesKubeProxyWouldNotUseAreNotCounted() {
        var foreign = slice("web-3", service: "web", endpoints: [endpoint("10.244.0.8", node: "node-a")])
        foreign.metadata.labels[WellKnown.serviceProxyName] = "someone-else"
        let result = table([local("web")], [
            slice("web-1", service: "web", ports: [EndpointSlice.Port(port: nil)], endpoints: [endpoint("10.244.0.5", node: "node-a")]),
            slice("web-2", service: "web", type: .fqdn, endpoints: [
                EndpointSlice.Endpoint(addresses: [ip("10.244.0.6")], nodeName: "node-a"),
            ]),
            slice("web-other-ns", service: "web", namespace: "other", endpoints: [endpoint("10.244.0.7", node: "node-a")]),
            foreign,
        ])
        #expect(result.ports[30100]?.localEndpoints == 0)
    }

    @Test func twoServicesOnOnePortGoToTheFirstByNamespaceAndName() {
        let result = table([local("zeta"), local("alpha", namespace: "web"), local("beta")], [
            slice("beta-1", service: "beta", endpoints: [endpoint("10.244.0.5", node: "node-a")]),
        ])
        #expect(result.ports == [30100: HealthCheckNodePort(namespace: "default", name: "beta", localEndpoints: 1)])
        #expect(result.warnings.map(\.description) == [
            "Service default/zeta: healthCheckNodePort 30100 is already used by default/beta; ignored",
            "Service web/alpha: healthCheckNodePort 30100 is already used by default/beta; ignored",
        ])
    }

    @Test func eachServiceHasItsOwnPortAndCount() {
        let result = table([local("web"), local("api", port: 30101)], [
            slice("web-1", service: "web", endpoints: [endpoint("10.244.0.5", node: "node-a")]),
            slice("api-1", service: "api", endpoints: [endpoint("10.244.0.9", node: "node-a"),
                                                       endpoint("10.244.0.10", node: "node-a")]),
        ])
        #expect(result.ports == [
            30100: HealthCheckNodePort(namespace: "default", name: "web", localEndpoints: 1),
            30101: HealthCheckNodePort(namespace: "default", name: "api", localEndpoints: 2),
        ])
    }
}
