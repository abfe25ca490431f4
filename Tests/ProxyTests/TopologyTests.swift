import IPVS
import Testing
@testable import Proxy

/// One endpoint of a topology case, with kube-proxy's test defaults: not serving, not
/// terminating, on another node unless `local`.
struct TopologyEndpoint: Sendable {
    var address: String
    var zones: Set<String> = []
    var nodes: Set<String> = []
    var ready = true
    var serving = false
    var terminating = false
    var local = false

    var candidate: EndpointCandidate {
        let parts = address.split(separator: ":")
        return EndpointCandidate(
            key: RealServerKey(address: ip(String(parts[0])), port: UInt16(parts[1])!),
            conditions: EndpointSlice.Conditions(ready: ready, serving: serving, terminating: terminating),
            isLocal: local, hints: EndpointSlice.Hints(forZones: zones, forNodes: nodes),
            nodeName: local ? "node-a" : "node-b")
    }
}

/// A case of kube-proxy's TestCategorizeEndpoints (pkg/proxy/topology_test.go). `cluster` and
/// `local` are the expected Cluster- and Local-policy endpoints; nil where the case leaves them
/// out because the Service uses no such endpoints. kipvs computes both sets alike whatever the
/// Service's policies (the builder picks one per virtual server), so cases that differ only in
/// policies share their endpoints.
struct TopologyCase: Sendable, CustomTestStringConvertible {
    var name: String
    var zone: String? = nil
    var endpoints: [TopologyEndpoint]
    var cluster: Set<String>?
    var local: Set<String>? = nil

    var testDescription: String { name }
}

private func e(_ address: String, zones: Set<String> = [], nodes: Set<String> = [], ready: Bool = true,
               serving: Bool = false, terminating: Bool = false, local: Bool = false) -> TopologyEndpoint {
    TopologyEndpoint(address: address, zones: zones, nodes: nodes, ready: ready, serving: serving,
                     terminating: terminating, local: local)
}

private let zoneCases: [TopologyCase] = [
    TopologyCase(
        name: "all endpoints have hints, the node has a zone and there are endpoints for it",
        zone: "zone-a",
        endpoints: [e("10.1.2.3:80", zones: ["zone-a"]), e("10.1.2.4:80", zones: ["zone-b"]),
                    e("10.1.2.5:80", zones: ["zone-c"]), e("10.1.2.6:80", zones: ["zone-a"])],
        cluster: ["10.1.2.3:80", "10.1.2.6:80"]),
    TopologyCase(
        name: "externalTrafficPolicy Local: topology ignored for Local endpoints",
        zone: "zone-a",
        endpoints: [e("10.1.2.3:80", zones: ["zone-a"], local: true), e("10.1.2.4:80", zones: ["zone-b"], local: true),
                    e("10.1.2.5:80", zones: ["zone-c"]), e("10.1.2.6:80", zones: ["zone-a"])],
        cluster: ["10.1.2.3:80", "10.1.2.6:80"], local: ["10.1.2.3:80", "10.1.2.4:80"]),
    TopologyCase(
        name: "internalTrafficPolicy Local: topology ignored for Local endpoints",
        zone: "zone-a",
        endpoints: [e("10.1.2.3:80", zones: ["zone-a"], local: true), e("10.1.2.4:80", zones: ["zone-b"], local: true),
                    e("10.1.2.5:80", zones: ["zone-c"]), e("10.1.2.6:80", zones: ["zone-a"])],
        cluster: ["10.1.2.3:80", "10.1.2.6:80"], local: ["10.1.2.3:80", "10.1.2.4:80"]),
    TopologyCase(
        name: "conflicting topology and localness",
        zone: "zone-a",
        endpoints: [e("10.0.0.0:80", zones: ["zone-a"], local: true), e("10.0.0.1:80", zones: ["zone-b"], local: true),
                    e("10.0.0.2:80", zones: ["zone-a"]), e("10.0.0.3:80", zones: ["zone-b"])],
        cluster: ["10.0.0.0:80", "10.0.0.2:80"], local: ["10.0.0.0:80", "10.0.0.1:80"]),
    TopologyCase(
        name: "empty node labels", zone: nil,
        endpoints: [e("10.1.2.3:80", zones: ["zone-a"])],
        cluster: ["10.1.2.3:80"]),
    TopologyCase(
        name: "empty zone label", zone: "",
        endpoints: [e("10.1.2.3:80", zones: ["zone-a"])],
        cluster: ["10.1.2.3:80"]),
    TopologyCase(
        name: "node in a different zone: no endpoint filtering", zone: "zone-b",
        endpoints: [e("10.1.2.3:80", zones: ["zone-a"])],
        cluster: ["10.1.2.3:80"]),
    TopologyCase(
        name: "unready endpoint", zone: "zone-a",
        endpoints: [e("10.1.2.3:80", zones: ["zone-a"]), e("10.1.2.4:80", zones: ["zone-b"]),
                    e("10.1.2.5:80", zones: ["zone-c"]), e("10.1.2.6:80", zones: ["zone-a"], ready: false)],
        cluster: ["10.1.2.3:80"]),
    TopologyCase(
        name: "only unready endpoints in the same zone: no filtering", zone: "zone-a",
        endpoints: [e("10.1.2.3:80", zones: ["zone-a"], ready: false), e("10.1.2.4:80", zones: ["zone-b"]),
                    e("10.1.2.5:80", zones: ["zone-c"]), e("10.1.2.6:80", zones: ["zone-a"], ready: false)],
        cluster: ["10.1.2.4:80", "10.1.2.5:80"]),
    TopologyCase(
        name: "missing hints: no filtering", zone: "zone-a",
        endpoints: [e("10.1.2.3:80", zones: ["zone-a"]), e("10.1.2.4:80", zones: ["zone-b"]),
                    e("10.1.2.5:80"), e("10.1.2.6:80", zones: ["zone-a"])],
        cluster: ["10.1.2.3:80", "10.1.2.4:80", "10.1.2.5:80", "10.1.2.6:80"]),
    TopologyCase(
        name: "several hints per endpoint: any endpoint hinted for the zone", zone: "zone-c",
        endpoints: [e("10.1.2.3:80", zones: ["zone-a", "zone-b", "zone-c"]), e("10.1.2.4:80", zones: ["zone-b", "zone-c"]),
                    e("10.1.2.5:80", zones: ["zone-b", "zone-d"]), e("10.1.2.6:80", zones: ["zone-c"])],
        cluster: ["10.1.2.3:80", "10.1.2.4:80", "10.1.2.6:80"]),
]

private let policyCases: [TopologyCase] = [
    TopologyCase(name: "internalTrafficPolicy Local, no endpoints", endpoints: [], cluster: nil, local: []),
    TopologyCase(
        name: "internalTrafficPolicy Local, every endpoint remote",
        endpoints: [e("10.0.0.0:80"), e("10.0.0.1:80")], cluster: nil, local: []),
    TopologyCase(
        name: "internalTrafficPolicy Local, every endpoint local",
        endpoints: [e("10.0.0.0:80", local: true), e("10.0.0.1:80", local: true)],
        cluster: nil, local: ["10.0.0.0:80", "10.0.0.1:80"]),
    TopologyCase(
        name: "internalTrafficPolicy Local, some endpoints local",
        endpoints: [e("10.0.0.0:80", local: true), e("10.0.0.1:80")], cluster: nil, local: ["10.0.0.0:80"]),
    TopologyCase(
        name: "Cluster policy, no endpoint ready",
        endpoints: [e("10.0.0.0:80", ready: false), e("10.0.0.1:80", ready: false)], cluster: []),
    TopologyCase(
        name: "Cluster policy, some endpoints ready",
        endpoints: [e("10.0.0.0:80", ready: false), e("10.0.0.1:80")], cluster: ["10.0.0.1:80"]),
    TopologyCase(
        name: "Cluster policy, every endpoint terminating",
        endpoints: [e("10.0.0.0:80", ready: false, serving: true, terminating: true, local: true),
                    e("10.0.0.1:80", ready: false, serving: true, terminating: true)],
        cluster: ["10.0.0.0:80", "10.0.0.1:80"]),
    TopologyCase(
        name: "internalTrafficPolicy Local, externalTrafficPolicy Cluster, some endpoints local",
        endpoints: [e("10.0.0.0:80", local: true), e("10.0.0.1:80")],
        cluster: ["10.0.0.0:80", "10.0.0.1:80"], local: ["10.0.0.0:80"]),
    TopologyCase(
        name: "internalTrafficPolicy Cluster, externalTrafficPolicy Local, some endpoints local",
        endpoints: [e("10.0.0.0:80", local: true), e("10.0.0.1:80")],
        cluster: ["10.0.0.0:80", "10.0.0.1:80"], local: ["10.0.0.0:80"]),
    TopologyCase(
        name: "both policies Local, some endpoints local",
        endpoints: [e("10.0.0.0:80", local: true), e("10.0.0.1:80")],
        cluster: ["10.0.0.0:80", "10.0.0.1:80"], local: ["10.0.0.0:80"]),
    TopologyCase(
        name: "both policies Local, every endpoint remote",
        endpoints: [e("10.0.0.0:80"), e("10.0.0.1:80")], cluster: ["10.0.0.0:80", "10.0.0.1:80"], local: []),
    TopologyCase(
        name: "both policies Local, every endpoint remote and terminating",
        endpoints: [e("10.0.0.0:80", ready: false, serving: true, terminating: true),
                    e("10.0.0.1:80", ready: false, serving: true, terminating: true)],
        cluster: ["10.0.0.0:80", "10.0.0.1:80"], local: []),
    TopologyCase(
        name: "externalTrafficPolicy Local with terminating endpoints",
        endpoints: [e("10.0.0.0:80"), e("10.0.0.1:80", ready: false, local: true),
                    e("10.0.0.2:80", ready: false, serving: true, terminating: true, local: true),
                    e("10.0.0.3:80", ready: false, serving: true, terminating: true)],
        cluster: ["10.0.0.0:80"], local: ["10.0.0.2:80"]),
    TopologyCase(
        name: "externalTrafficPolicy Local ignored without external addresses",
        endpoints: [e("10.0.0.0:80"), e("10.0.0.1:80", local: true)], cluster: ["10.0.0.0:80", "10.0.0.1:80"]),
    TopologyCase(
        name: "internal-only Service with internalTrafficPolicy Local",
        endpoints: [e("10.0.0.0:80"), e("10.0.0.1:80", local: true)], cluster: nil, local: ["10.0.0.1:80"]),
]

/// Node hints (trafficDistribution PreferSameNode), by topologyModeFromHints' rules.
private let nodeCases: [TopologyCase] = [
    TopologyCase(
        name: "every ready endpoint has a node hint and one is for this node",
        zone: "zone-a",
        endpoints: [e("10.1.2.3:80", zones: ["zone-a"], nodes: ["node-a"]), e("10.1.2.4:80", zones: ["zone-a"], nodes: ["node-b"]),
                    e("10.1.2.5:80", zones: ["zone-b"], nodes: ["node-c"]), e("10.1.2.6:80", zones: ["zone-a"], nodes: ["node-a"])],
        cluster: ["10.1.2.3:80", "10.1.2.6:80"]),
    TopologyCase(
        name: "node hints, none for this node: zone hints",
        zone: "zone-a",
        endpoints: [e("10.1.2.3:80", zones: ["zone-a"], nodes: ["node-b"]), e("10.1.2.4:80", zones: ["zone-a"], nodes: ["node-b"]),
                    e("10.1.2.5:80", zones: ["zone-b"], nodes: ["node-c"])],
        cluster: ["10.1.2.3:80", "10.1.2.4:80"]),
    TopologyCase(
        name: "an endpoint without a node hint: zone hints",
        zone: "zone-a",
        endpoints: [e("10.1.2.3:80", zones: ["zone-a"], nodes: ["node-a"]), e("10.1.2.4:80", zones: ["zone-a"]),
                    e("10.1.2.5:80", zones: ["zone-b"], nodes: ["node-c"])],
        cluster: ["10.1.2.3:80", "10.1.2.4:80"]),
    TopologyCase(
        name: "node hints for other nodes and no zone hints: every endpoint",
        zone: "zone-a",
        endpoints: [e("10.1.2.3:80", nodes: ["node-b"]), e("10.1.2.4:80", nodes: ["node-c"])],
        cluster: ["10.1.2.3:80", "10.1.2.4:80"]),
    TopologyCase(
        name: "node hints without a zone label",
        zone: nil,
        endpoints: [e("10.1.2.3:80", nodes: ["node-a"]), e("10.1.2.4:80", nodes: ["node-c"])],
        cluster: ["10.1.2.3:80"]),
    TopologyCase(
        name: "an unready endpoint hinted for this node does not count",
        zone: "zone-a",
        endpoints: [e("10.1.2.3:80", zones: ["zone-a"], nodes: ["node-a"], ready: false),
                    e("10.1.2.4:80", zones: ["zone-a"], nodes: ["node-b"]), e("10.1.2.5:80", zones: ["zone-b"], nodes: ["node-c"])],
        cluster: ["10.1.2.4:80"]),
    TopologyCase(
        name: "node hints for this node, but every hinted endpoint terminating",
        zone: "zone-a",
        endpoints: [e("10.1.2.3:80", nodes: ["node-a"], ready: false, serving: true, terminating: true),
                    e("10.1.2.4:80", nodes: ["node-b"], ready: false, serving: true, terminating: true)],
        cluster: ["10.1.2.3:80", "10.1.2.4:80"]),
]

@Suite struct TopologyTests {
    static let web = service("web")

    @Test(arguments: zoneCases + policyCases + nodeCases)
    func categorizeEndpoints(_ c: TopologyCase) {
        let node = NodeConfig(nodeName: "node-a", zone: c.zone)
        let candidates = c.endpoints.map(\.candidate)
        if let cluster = c.cluster {
            #expect(Set(candidates.clusterEndpoints(of: Self.web, on: node).map(\.key.description)) == cluster)
        }
        if let local = c.local {
            #expect(Set(candidates.selected(localOnly: true).map(\.key.description)) == local)
        }
    }

    // MARK: trafficDistribution without hints (no EndpointSlice controller)

    /// Endpoints on node-a and node-b in zone-a, node-c in zone-b; none hinted.
    static let unhinted: [EndpointCandidate] = [
        ("10.1.2.3", "node-a", "zone-a"), ("10.1.2.4", "node-b", "zone-a"), ("10.1.2.5", "node-c", "zone-b"),
    ].map { address, node, zone in
        EndpointCandidate(key: rkey(address, 80), conditions: .ready, isLocal: node == "node-a", nodeName: node, zone: zone)
    }

    func chosen(_ distribution: Service.TrafficDistribution?, annotations: [String: String] = [:],
                _ candidates: [EndpointCandidate] = unhinted) -> [String] {
        var web = service("web", annotations: annotations)
        web.trafficDistribution = distribution
        return candidates.clusterEndpoints(of: web, on: NodeConfig(nodeName: "node-a", zone: "zone-a"))
            .map(\.key.address.description)
    }

    @Test func withoutTrafficDistributionEveryEndpoint() {
        #expect(chosen(nil) == ["10.1.2.3", "10.1.2.4", "10.1.2.5"])
    }

    @Test func preferSameZoneDerivesZoneHints() {
        #expect(chosen(.preferSameZone) == ["10.1.2.3", "10.1.2.4"])
    }

    @Test func preferSameNodeDerivesNodeHints() {
        #expect(chosen(.preferSameNode) == ["10.1.2.3"])
    }

    @Test func preferSameNodeFallsBackToTheZoneWithoutAnEndpointHere() {
        let elsewhere = Self.unhinted.filter { $0.nodeName != "node-a" }
        #expect(chosen(.preferSameNode, elsewhere) == ["10.1.2.4"])
    }

    @Test func anEndpointWithoutAZoneMeansNoZoneTopology() {
        var candidates = Self.unhinted
        candidates[2].zone = nil
        #expect(chosen(.preferSameZone, candidates) == ["10.1.2.3", "10.1.2.4", "10.1.2.5"])
    }

    @Test func hintsThatArePresentAreUsedAsTheyAre() {
        var candidates = Self.unhinted
        candidates[2].hints.forZones = ["zone-a"]  // the controller chose otherwise
        candidates[0].hints.forZones = ["zone-b"]
        candidates[1].hints.forZones = ["zone-b"]
        #expect(chosen(.preferSameZone, candidates) == ["10.1.2.5"])
    }

    @Test(arguments: ["service.kubernetes.io/topology-mode", "service.kubernetes.io/topology-aware-hints"])
    func topologyModeAutoLeavesHintsToTheController(_ annotation: String) {
        #expect(chosen(.preferSameZone, annotations: [annotation: "Auto"]) == ["10.1.2.3", "10.1.2.4", "10.1.2.5"])
        #expect(chosen(.preferSameZone, annotations: [annotation: "Disabled"]) == ["10.1.2.3", "10.1.2.4"])
    }

    @Test func unreadyEndpointsGetNoDerivedHints() {
        var web = service("web")
        web.trafficDistribution = .preferSameNode
        var candidates = Self.unhinted
        candidates[0].conditions = .servingTerminating
        let derived = candidates.hintsDerived(for: web)
        #expect(derived[0].hints == EndpointSlice.Hints())
        #expect(derived[1].hints == EndpointSlice.Hints(forZones: ["zone-a"], forNodes: ["node-b"]))
    }

    // MARK: Through the desired state

    static let zonedCluster = ClusterState(
        services: [service("web", type: .nodePort, ports: [Service.Port(port: 80, nodePort: 30080)], externalPolicy: .local)],
        endpointSlices: [slice("web-1", service: "web", endpoints: [
            EndpointSlice.Endpoint(addresses: [ip("10.244.0.5")], nodeName: "node-a", hints: .init(forZones: ["zone-b"])),
            EndpointSlice.Endpoint(addresses: [ip("10.244.1.6")], nodeName: "node-b", hints: .init(forZones: ["zone-a"])),
        ])],
        nodes: [ClusterNode(name: "node-a", labels: [WellKnown.zoneLabel: "zone-a"]),
                ClusterNode(name: "node-b", labels: [WellKnown.zoneLabel: "zone-b"])])

    @Test func theZoneComesFromThisNodesObject() {
        let desired = DesiredState(Self.zonedCluster, node: nodeA.named("node-a"))
        #expect(desired.summary["TCP 10.96.0.10:80"] == ["10.244.1.6:8080"])
        // externalTrafficPolicy Local: the node's own endpoint, hints or not.
        #expect(desired.summary["TCP 192.168.1.10:30080"] == ["10.244.0.5:8080"])
    }

    @Test func withoutItsNodeObjectTheNodeHasNoZone() {
        var cluster = Self.zonedCluster
        cluster.nodes.removeFirst()
        let desired = DesiredState(cluster, node: nodeA.named("node-a"))
        #expect(desired.summary["TCP 10.96.0.10:80"] == ["10.244.0.5:8080", "10.244.1.6:8080"])
    }

    @Test func observingTakesTheLabelOfTheNodeOfThatName() {
        let config = NodeConfig(nodeName: "node-b", zone: "configured")
        #expect(config.observing(Self.zonedCluster).zone == "zone-b")
        #expect(config.observing(ClusterState()).zone == "configured")
        #expect(config.observing(ClusterState(nodes: [ClusterNode(name: "node-b")])).zone == nil)
    }
}

extension NodeConfig {
    func named(_ name: String) -> NodeConfig {
        var config = self
        config.nodeName = name
        return config
    }
}
