import IPVS
import NFTables
import Testing
@testable import Proxy

/// The change tracker and the per-Service desired state: a change is taken per object, touches
/// only its Service, and what one update computes equals what all Services computed afresh give.
@Suite struct ChangeTrackerTests {
    @Test func aChangeThatChangesNothingTouchesNothing() {
        let web = service("web")
        var objects = ClusterObjects(ClusterState(services: [web]))
        let touched = objects.apply(ClusterChanges(services: [ObjectName(web.metadata): web]))
        #expect(touched.isEmpty)
    }

    @Test func aSliceTouchesTheServiceItNames() {
        var objects = ClusterObjects(ClusterState(services: [service("web"), service("db", clusterIPs: ["10.96.0.11"])]))
        let one = slice("web-1", service: "web", endpoints: [endpoint("10.244.0.5")])
        #expect(objects.apply(ClusterChanges(endpointSlices: [ObjectName(one.metadata): one])).services
                == [ObjectName(namespace: "default", name: "web")])
        // Relabelled to another Service: both are touched, and only the new one has it.
        var moved = one
        moved.metadata.labels[WellKnown.serviceName] = "db"
        let touched = objects.apply(ClusterChanges(endpointSlices: [ObjectName(one.metadata): moved]))
        #expect(touched.services == [ObjectName(namespace: "default", name: "web"), ObjectName(namespace: "default", name: "db")])
        #expect(objects.slices(of: ObjectName(namespace: "default", name: "web")).isEmpty)
        #expect(objects.slices(of: ObjectName(namespace: "default", name: "db")) == [moved])
        // Deleted: its Service is touched and has none left.
        let gone = objects.apply(ClusterChanges(endpointSlices: [ObjectName(one.metadata): nil]))
        #expect(gone.services == [ObjectName(namespace: "default", name: "db")])
        #expect(objects.slices(of: ObjectName(namespace: "default", name: "db")).isEmpty)
    }

    @Test func aNodeChangeIsSeen() {
        var objects = ClusterObjects()
        #expect(objects.apply(ClusterChanges(nodes: ["node-a": ClusterNode(name: "node-a", labels: ["topology.kubernetes.io/zone": "z1"])])).nodes)
        #expect(!objects.apply(ClusterChanges(nodes: ["node-a": ClusterNode(name: "node-a", labels: ["topology.kubernetes.io/zone": "z1"])])).nodes)
    }

    @Test func changesMergeLaterWins() {
        let web = service("web")
        var changes = ClusterChanges(services: [ObjectName(web.metadata): web])
        changes.merge(ClusterChanges(services: [ObjectName(web.metadata): nil]))
        #expect(changes.services[ObjectName(web.metadata)] == .some(nil))
        let between = ClusterChanges.between(ClusterState(services: [web]), ClusterState())
        #expect(between.services == [ObjectName(web.metadata): nil])
    }

    /// Two Services with the same external IP and port: the first in name order has it, and a change
    /// to either needs all Services computed again.
    @Test func contestedServicesAreNotUpdatedAlone() {
        let a = service("a", clusterIPs: ["10.96.0.1"], externalIPs: ["203.0.113.7"])
        let b = service("b", clusterIPs: ["10.96.0.2"], externalIPs: ["203.0.113.7"])
        let c = service("c", clusterIPs: ["10.96.0.3"])
        var objects = ClusterObjects(ClusterState(services: [a, b, c]))
        var index = DesiredStateIndex(objects, node: nodeA)
        #expect(index.state.virtualServers[tcp("203.0.113.7", 80)]?.service.name == "a")
        #expect(index.warnings.contains { $0.object == "Service default/b" })
        var delta = DesiredStateDelta()
        #expect(!index.update(ObjectName(a.metadata), objects, into: &delta))
        #expect(!index.update(ObjectName(b.metadata), objects, into: &delta))
        #expect(index.update(ObjectName(c.metadata), objects, into: &delta))
        // A new claim on a held key is a conflict too.
        let d = service("d", clusterIPs: ["10.96.0.3"], externalIPs: ["203.0.113.7"])
        _ = objects.apply(ClusterChanges(services: [ObjectName(d.metadata): d]))
        #expect(!index.update(ObjectName(d.metadata), objects, into: &delta))
    }

    /// Random changes, one at a time: after each, the index updated incrementally equals one built
    /// afresh from the same objects, and the delta turns the old state into the new one.
    @Test(arguments: [1, 2, 3, 4, 5])
    func anUpdatedIndexEqualsAFreshOne(seed: UInt64) {
        var random = SeededRandom(seed: seed)
        var objects = ClusterObjects()
        var index = DesiredStateIndex(objects, node: nodeA)
        var checked = 0
        for step in 0..<300 {
            let number = Int.random(in: 0..<12, using: &random)
            let changes = RandomCluster.change(of: number, using: &random)
            let touched = objects.apply(changes)
            let before = index.state
            var delta = DesiredStateDelta()
            var complete = true
            for name in touched.services.sorted() where !index.update(name, objects, into: &delta) { complete = false }
            if !complete {
                index = DesiredStateIndex(objects, node: nodeA, marks: index.marks)
                continue
            }
            let fresh = DesiredStateIndex(objects, node: nodeA, marks: index.marks)
            guard index.state == fresh.state, before.applying(delta) == index.state else {
                let changed = changes.services.keys.map(\.description) + changes.endpointSlices.keys.map(\.description)
                let updatedOnly = Self.difference(index.state, fresh.state)
                let freshOnly = Self.difference(fresh.state, index.state)
                let deltaOnly = Self.difference(before.applying(delta), index.state)
                Issue.record("step \(step), after \(changed): updated − fresh: \(updatedOnly); fresh − updated: \(freshOnly); delta − updated: \(deltaOnly)")
                return
            }
            checked += 1
        }
        // Most steps must be updates, not rebuilds, or this test shows little.
        #expect(checked > 80, "only \(checked) of 300 steps were updates")
    }
}

extension ChangeTrackerTests {
    /// What `a` has that `b` lacks, briefly.
    static func difference(_ a: DesiredState, _ b: DesiredState) -> String {
        let servers: [String] = a.virtualServers.filter { b.virtualServers[$0.key] != $0.value }
            .map { "\($0.key) of \($0.value.service) \($0.value.realServers.keys.sorted())" }.sorted()
        let marks: [String] = a.packetPath.inClusterMarks.filter { b.packetPath.inClusterMarks[$0.key] != $0.value }.map { "mark \($0.key)" }
        let external: [String] = a.packetPath.external.subtracting(b.packetPath.external).map { "external \($0)" }
        let clusterIPs: [String] = a.packetPath.clusterIPs.subtracting(b.packetPath.clusterIPs).map { "clusterIP \($0)" }
        let addresses: [String] = a.addresses.subtracting(b.addresses).map { "address \($0)" }
        let local: [String] = a.packetPath.localEndpoints.subtracting(b.packetPath.localEndpoints).map { "local \($0)" }
        let ports: [String] = a.packetPath.healthCheckNodePorts.subtracting(b.packetPath.healthCheckNodePorts).map { "hc \($0)" }
        let firewalls: [String] = a.packetPath.firewalls.filter { b.packetPath.firewalls[$0.key] != $0.value }.map { "firewall \($0.key)" }
        return (servers + marks + external + clusterIPs + addresses + local + ports + firewalls).joined(separator: ", ")
    }
}

extension DesiredState {
    /// This state with a delta's removals and additions made.
    func applying(_ delta: DesiredStateDelta) -> DesiredState {
        var state = self
        for key in delta.removed.virtualServers.keys { state.virtualServers[key] = nil }
        state.virtualServers.merge(delta.added.virtualServers) { _, new in new }
        state.addresses.subtract(delta.removed.addresses)
        state.addresses.formUnion(delta.added.addresses)
        var path = state.packetPath
        let (removed, added) = (delta.removed.packetPath, delta.added.packetPath)
        path.clusterIPs.subtract(removed.clusterIPs)
        path.clusterIPs.formUnion(added.clusterIPs)
        path.external.subtract(removed.external)
        path.external.formUnion(added.external)
        path.localEndpoints.subtract(removed.localEndpoints)
        path.localEndpoints.formUnion(added.localEndpoints)
        path.healthCheckNodePorts.subtract(removed.healthCheckNodePorts)
        path.healthCheckNodePorts.formUnion(added.healthCheckNodePorts)
        for key in removed.inClusterMarks.keys { path.inClusterMarks[key] = nil }
        path.inClusterMarks.merge(added.inClusterMarks) { _, new in new }
        for key in removed.firewalls.keys { path.firewalls[key] = nil }
        path.firewalls.merge(added.firewalls) { _, new in new }
        state.packetPath = path
        return state
    }
}

/// SplitMix64: the same changes on every run.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Services and slices drawn from a small space, so that addresses, endpoints, node ports and
/// health-check ports are shared and claims collide.
enum RandomCluster {
    static func change(of number: Int, using random: inout SeededRandom) -> ClusterChanges {
        let name = ObjectName(namespace: "default", name: "svc-\(number)")
        switch Int.random(in: 0..<10, using: &random) {
        case 0:
            return ClusterChanges(services: [name: nil])
        case 1:
            return ClusterChanges(endpointSlices: [ObjectName(namespace: "default", name: "svc-\(number)-a"): nil])
        case 2...5:
            let slice = slice("svc-\(number)-\(Bool.random(using: &random) ? "a" : "b")", service: "svc-\(number)",
                              ports: [EndpointSlice.Port(port: 8080), EndpointSlice.Port(name: "dns", port: 53, protocol: .udp)],
                              endpoints: (0..<Int.random(in: 0..<4, using: &random)).map { _ in
                                  endpoint("10.244.0.\(Int.random(in: 1..<8, using: &random))",
                                           Bool.random(using: &random) ? .ready : .init(ready: false, serving: true, terminating: true),
                                           node: Bool.random(using: &random) ? "node-a" : "node-b")
                              })
            return ClusterChanges(endpointSlices: [ObjectName(slice.metadata): slice])
        default:
            var ports = [Service.Port(port: 80)]
            if Bool.random(using: &random) { ports.append(Service.Port(name: "dns", protocol: .udp, port: 53)) }
            let type: Service.ServiceType = [.clusterIP, .nodePort, .loadBalancer].randomElement(using: &random)!
            if type != .clusterIP {
                for i in ports.indices { ports[i].nodePort = UInt16(30000 + Int.random(in: 0..<6, using: &random)) }
            }
            var object = service(
                "svc-\(number)", type: type,
                clusterIPs: ["10.96.0.\(number + 1)"], ports: ports,
                externalIPs: Bool.random(using: &random) ? ["203.0.113.\(Int.random(in: 1..<4, using: &random))"] : [],
                externalPolicy: Bool.random(using: &random) ? .local : .cluster,
                loadBalancer: type == .loadBalancer ? [Service.LoadBalancerIngress(ip: ip("198.51.100.\(Int.random(in: 1..<4, using: &random))"))] : [])
            if type == .loadBalancer {
                object.healthCheckNodePort = UInt16(31000 + Int.random(in: 0..<3, using: &random))
                if Bool.random(using: &random) { object.loadBalancerSourceRanges = [CIDR("192.0.2.0/24")!] }
            }
            return ClusterChanges(services: [name: object])
        }
    }
}
