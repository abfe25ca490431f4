import IPVS
import Testing
@testable import Proxy

@Suite struct EndpointWeightsTests {
    @Test func parsesAddressesAndPods() throws {
        let weights = try EndpointWeights(parsing: " 10.244.1.5=3, fd00:244::7 = 0,web-7d4b9-x2x=65535,")
        #expect(weights.byAddress == [ip("10.244.1.5"): 3, ip("fd00:244::7"): 0])
        #expect(weights.byPod == ["web-7d4b9-x2x": 65535])
        #expect(try EndpointWeights(parsing: "").isEmpty)
    }

    @Test(arguments: [
        ("10.244.1.5", #"entry "10.244.1.5" is not NAME=WEIGHT"#),
        ("10.244.1.5=3=4", #"entry "10.244.1.5=3=4" is not NAME=WEIGHT"#),
        ("10.244.1.5=heavy", #"entry "10.244.1.5=heavy": the weight must be a number from 0 to 65535"#),
        ("10.244.1.5=65536", #"entry "10.244.1.5=65536": the weight must be a number from 0 to 65535"#),
        ("10.244.1.5=-1", #"entry "10.244.1.5=-1": the weight must be a number from 0 to 65535"#),
        ("10.244.1.5=1,10.244.1.5=2", #"entry "10.244.1.5=2": 10.244.1.5 is listed twice"#),
        ("web-0=1, web-0=0", #"entry "web-0=0": web-0 is listed twice"#),
        ("Web_0=1", #"entry "Web_0=1": "Web_0" is neither an IP address nor a pod name"#),
        ("=1", #"entry "=1": "" is neither an IP address nor a pod name"#),
    ])
    func refusesBadEntries(_ text: String, _ problem: String) {
        #expect(throws: EndpointWeights.Problem(description: problem)) { try EndpointWeights(parsing: text) }
    }

    static let slices = [slice("web-1", service: "web", endpoints: [
        EndpointSlice.Endpoint(addresses: [ip("10.244.0.5")], nodeName: "node-a", podName: "web-a"),
        EndpointSlice.Endpoint(addresses: [ip("10.244.1.6")], nodeName: "node-b", podName: "web-b"),
        EndpointSlice.Endpoint(addresses: [ip("10.244.2.7")], nodeName: "node-c", podName: "web-c"),
    ])]

    func weights(_ annotation: String, scheduler: String = "wrr", type: Service.ServiceType = .clusterIP,
                 externalPolicy: Service.TrafficPolicy = .cluster) -> DesiredState {
        DesiredState([service("web", type: type, ports: [Service.Port(port: 80, nodePort: 30080)], externalPolicy: externalPolicy,
                              annotations: [WellKnown.endpointWeightsAnnotation: annotation,
                                            WellKnown.schedulerAnnotation: scheduler])], Self.slices)
    }

    static func realWeights(_ state: DesiredState, _ key: VirtualServerKey) -> [String: Int32] {
        Dictionary(uniqueKeysWithValues: (state.virtualServers[key]?.realServers.values).map {
            $0.map { ($0.key.address.description, $0.weight) }
        } ?? [])
    }

    @Test func byAddressAndByPodOthersOne() {
        let state = weights("10.244.0.5=3, web-b=0")
        #expect(Self.realWeights(state, tcp("10.96.0.10", 80)) == ["10.244.0.5": 3, "10.244.1.6": 0, "10.244.2.7": 1])
        #expect(state.warnings.isEmpty)
        #expect(state.virtualServers[tcp("10.96.0.10", 80)]?.server.flags == [])
    }

    @Test func anAddressEntryWinsOverThePodsOwn() {
        let state = weights("web-a=7, 10.244.0.5=2")
        #expect(Self.realWeights(state, tcp("10.96.0.10", 80))["10.244.0.5"] == 2)
    }

    @Test func everyVirtualServerOfTheServiceGetsThem() throws {
        let state = weights("10.244.2.7=5, web-a=2", type: .nodePort, externalPolicy: .local)
        #expect(state.virtualServers.count == 3)  // cluster IP, node port, in-cluster firewall mark
        let all: [String: Int32] = ["10.244.0.5": 2, "10.244.1.6": 1, "10.244.2.7": 5]
        #expect(Self.realWeights(state, tcp("10.96.0.10", 80)) == all)
        // externalTrafficPolicy Local: this node's endpoint only.
        #expect(Self.realWeights(state, tcp("192.168.1.10", 30080)) == ["10.244.0.5": 2])
        let mark = try #require(state.virtualServers.keys.first { if case .firewallMark = $0 { true } else { false } })
        #expect(Self.realWeights(state, mark) == all)
    }

    @Test func aBadEntryVoidsTheAnnotationWithAWarning() {
        let state = weights("10.244.0.5=3, 10.244.1.6=lots")
        #expect(Self.realWeights(state, tcp("10.96.0.10", 80)) == ["10.244.0.5": 1, "10.244.1.6": 1, "10.244.2.7": 1])
        #expect(state.warnings.map(\.description) == [
            #"Service default/web: annotation kipvs.io/endpoint-weights: entry "10.244.1.6=lots": the weight must be a number from 0 to 65535; the annotation is ignored"#,
        ])
    }

    @Test func maglevFallsBackFromDrainedServers() {
        #expect(weights("10.244.0.5=0", scheduler: "mh").virtualServers.values.map(\.server.flags)
                == [[.schedulerPort, .schedulerFallback]])
        #expect(weights("10.244.0.5=0, 10.244.1.6=x", scheduler: "mh").virtualServers.values.map(\.server.flags)
                == [.schedulerPort])
        #expect(weights("10.244.0.5=0", scheduler: "sh").virtualServers.values.map(\.server.flags) == [[]])
    }

    @Test func aWeightChangeIsARealServerUpdate() {
        let before = weights("")
        let after = weights("10.244.1.6=4")
        let key = tcp("10.96.0.10", 80)
        let current = before.virtualServers.values.map { want in
            (VirtualServerStatus(server: want.server), want.realServers.values.map { RealServerStatus(server: $0) })
        }
        let plan = Plan(desired: after, current: current, ownership: Ownership(addresses: after.addresses),
                        termination: GracefulTermination(), now: .now)
        #expect(plan.operations == [.updateRealServer(key, RealServer(address: ip("10.244.1.6"), port: 8080, weight: 4))])
    }
}
