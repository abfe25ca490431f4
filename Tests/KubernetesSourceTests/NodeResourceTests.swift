import Proxy
import Testing
@testable import KubernetesSource

@Suite struct NodeResourceTests {
    @Test func onlyTheNamedNodeIsListed() {
        #expect(APIResource.node(named: "ip-10-0-1-7.ec2.internal").path
                == "/api/v1/nodes?fieldSelector=metadata.name%3Dip-10-0-1-7.ec2.internal")
        #expect(APIResource.node(named: "node-a").name == "nodes")
    }

    @Test func listAndEvents() throws {
        let nodes = APIResource.node(named: "node-a")
        let (page, problems) = try nodes.decodeList("""
            {"kind":"NodeList","apiVersion":"v1","metadata":{"resourceVersion":"77"},
             "items":[{"metadata":{"name":"node-a","resourceVersion":"70","labels":{"topology.kubernetes.io/zone":"zone-a"}},
                       "spec":{"podCIDR":"10.244.0.0/24"},"status":{"conditions":[{"type":"Ready","status":"True"}]}}]}
            """)
        #expect(problems.isEmpty)
        // Cluster-scoped: no namespace, keyed as the loader keys objects without one.
        #expect(page.items == ["default/node-a": ClusterNode(name: "node-a", labels: [WellKnown.zoneLabel: "zone-a"])])

        let tainted = try nodes.decodeEvent("""
            {"type":"MODIFIED","object":{"metadata":{"name":"node-a","resourceVersion":"80"},\
            "spec":{"taints":[{"key":"ToBeDeletedByClusterAutoscaler","value":"1735787045","effect":"NoSchedule"}]}}}
            """)
        guard case .modified("default/node-a", let node?, "80") = tainted.event else {
            Issue.record("expected a MODIFIED event with a node, got \(tainted.event)")
            return
        }
        #expect(!node.isEligible)

        let broken = try nodes.decodeEvent(#"{"type":"ADDED","object":{"metadata":{"name":"node-a","resourceVersion":"81"},"spec":{"taints":[{"effect":"NoSchedule"}]}}}"#)
        #expect(broken.problem?.description.contains("spec.taints[0].key") == true)
    }
}
