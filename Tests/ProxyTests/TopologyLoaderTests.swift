import IPVS
import Testing
import Yams
@testable import Proxy

@Suite struct TopologyLoaderTests {
    @Test func nodeManifest() throws {
        let state = try ManifestLoader.parse("""
            apiVersion: v1
            kind: Node
            metadata:
              name: ip-10-0-1-7.ec2.internal
              labels: {topology.kubernetes.io/zone: eu-west-1a, kubernetes.io/os: linux}
              deletionTimestamp: "2025-01-02T03:04:05Z"
            spec:
              podCIDR: 10.244.1.0/24
              taints:
              - {key: ToBeDeletedByClusterAutoscaler, value: "1735787045", effect: NoSchedule}
              - {key: node.kubernetes.io/unreachable, effect: NoExecute}
            status: {conditions: [{type: Ready, status: "True"}]}
            """, source: "node.yaml")
        let node = try #require(state.nodes.first)
        #expect(node.name == "ip-10-0-1-7.ec2.internal")
        #expect(node.zone == "eu-west-1a")
        #expect(node.isBeingDeleted)
        #expect(node.taints == [
            ClusterNode.Taint(key: "ToBeDeletedByClusterAutoscaler", value: "1735787045", effect: "NoSchedule"),
            ClusterNode.Taint(key: "node.kubernetes.io/unreachable", value: "", effect: "NoExecute"),
        ])
        #expect(!node.isEligible)
    }

    @Test(arguments: [
        (ClusterNode(name: "n"), true),
        (ClusterNode(name: "n", isBeingDeleted: true), false),
        (ClusterNode(name: "n", taints: [.init(key: "ToBeDeletedByClusterAutoscaler", effect: "NoSchedule")]), false),
        (ClusterNode(name: "n", taints: [.init(key: "DeletionCandidateOfClusterAutoscaler", effect: "PreferNoSchedule")]), true),
    ])
    func eligibility(_ node: ClusterNode, _ eligible: Bool) {
        #expect(node.isEligible == eligible)
    }

    @Test func aNodeWithABadNameOrTwiceIsAProblem() {
        let bad = loadError("apiVersion: v1\nkind: Node\nmetadata: {name: Node_1}\n", source: "n.yaml")
        #expect(bad?.description.contains("metadata.name") == true)
        let twice = loadError("""
            apiVersion: v1
            kind: Node
            metadata: {name: n1}
            ---
            apiVersion: v1
            kind: Node
            metadata: {name: n1}
            """, source: "n.yaml")
        #expect(twice?.description.contains("Node n1") == true)
    }

    @Test(arguments: [
        ("PreferClose", Service.TrafficDistribution.preferSameZone),
        ("PreferSameZone", .preferSameZone),
        ("PreferSameNode", .preferSameNode),
        ("PreferSomewhereNew", nil),
    ])
    func trafficDistribution(_ text: String, _ expected: Service.TrafficDistribution?) throws {
        let state = try ManifestLoader.parse("""
            apiVersion: v1
            kind: Service
            metadata: {name: web}
            spec: {clusterIP: 10.96.0.10, ports: [{port: 80}], trafficDistribution: \(text)}
            """, source: "web.yaml")
        #expect(state.services.first?.trafficDistribution == expected)
    }

    @Test func endpointZoneHintsAndPod() throws {
        let state = try ManifestLoader.parse("""
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata: {name: web-1, labels: {kubernetes.io/service-name: web}}
            addressType: IPv4
            ports: [{port: 8080}]
            endpoints:
            - addresses: [10.244.1.5]
              nodeName: node-a
              zone: zone-a
              targetRef: {kind: Pod, name: web-7d4b9-x2x, namespace: default}
              hints:
                forZones: [{name: zone-a}, {name: zone-b}]
                forNodes: [{name: node-a}]
            - addresses: [10.244.1.6]
              targetRef: {kind: Node, name: node-b}
            """, source: "slice.yaml")
        let endpoints = try #require(state.endpointSlices.first?.endpoints)
        #expect(endpoints[0].zone == "zone-a")
        #expect(endpoints[0].podName == "web-7d4b9-x2x")
        #expect(endpoints[0].hints == EndpointSlice.Hints(forZones: ["zone-a", "zone-b"], forNodes: ["node-a"]))
        #expect(endpoints[1].zone == nil)
        #expect(endpoints[1].podName == nil)
        #expect(endpoints[1].hints == EndpointSlice.Hints())
    }

    @Test func aHintWithoutANameIsAProblem() {
        let error = loadError("""
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata: {name: web-1, labels: {kubernetes.io/service-name: web}}
            addressType: IPv4
            endpoints: [{addresses: [10.244.1.5], hints: {forZones: [{}]}}]
            """, source: "slice.yaml")
        #expect(error?.description.contains("endpoints[0].hints.forZones[0].name") == true)
    }

    @Test func nodeFromTheAPI() throws {
        let node = try ClusterNode(apiObject: try #require(try Yams.compose(yaml: """
            {"metadata":{"name":"node-a","resourceVersion":"7","labels":{"topology.kubernetes.io/zone":"z1"}},
             "spec":{"taints":[{"key":"ToBeDeletedByClusterAutoscaler","effect":"NoSchedule"}]}}
            """)), source: "nodes")
        #expect(node == ClusterNode(name: "node-a", labels: [WellKnown.zoneLabel: "z1"],
                                    taints: [.init(key: WellKnown.toBeDeletedTaint, effect: "NoSchedule")]))
        #expect(throws: LoadError.self) {
            try ClusterNode(apiObject: try Yams.compose(yaml: #"{"metadata":{"name":"node-a"},"spec":{"taints":[{}]}}"#)!,
                            source: "nodes")
        }
    }
}
