import Foundation
import Proxy
import Testing
@testable import KubernetesSource

/// The API's objects as JSON types them: a string is a string, a number a number, a bool
/// `true` or `false`; as the API server reads them, a quoted number is no number.
@Suite struct JSONTypingTests {
    /// An ADDED event of Service shop/web with `spec`, and `metadata` members after its name.
    static func serviceEvent(spec: String, metadata: String = "") -> String {
        #"{"type":"ADDED","object":{"metadata":{"name":"web","namespace":"shop","resourceVersion":"7"\#(metadata)},"spec":\#(spec)}}"#
    }

    /// The one problem of an event that must be undecodable.
    func problem<Object>(_ resource: APIResource<Object>, _ line: String) throws -> String {
        let decoded = try resource.decodeEvent(line)
        guard case .undecodable = decoded.event else {
            Issue.record("expected an undecodable event, got \(decoded.event)")
            return ""
        }
        return try #require(decoded.problem).description
    }

    @Test(arguments: [
        (#"{"ports":[{"port":"80"}]}"#, #"spec.ports[0].port: expected an integer, got "80""#),
        (#"{"ports":[{"port":80.5}]}"#, "spec.ports[0].port: expected an integer, got 80.5"),
        (#"{"ports":[{"port":true}]}"#, "spec.ports[0].port: expected an integer, got true"),
        (#"{"ports":[{"port":[80]}]}"#, "spec.ports[0].port: expected an integer, got a list"),
        (#"{"ports":[{"port":{}}]}"#, "spec.ports[0].port: expected an integer, got an object"),
        (#"{"ports":[{"port":123456789012345678901234567890}]}"#, "spec.ports[0].port: expected an integer, got 1.2345678901234568e+29"),
        (#"{"ports":[{"port":1e400}]}"#, "spec.ports[0].port: expected an integer, got a number beyond any Double"),
        (#"{"ports":[{"port":-1}]}"#, "spec.ports[0].port: -1 is out of range 1-65535"),
        (#"{"ports":[{"port":80,"targetPort":"8080"}]}"#, #"spec.ports[0].targetPort: "8080" must be a-z, 0-9 and '-' with at least one letter"#),
        (#"{"ports":[{"port":80,"targetPort":true}]}"#, "spec.ports[0].targetPort: expected a string"),
        (#"{"ports":[{"port":80,"protocol":6}]}"#, "spec.ports[0].protocol: expected a string"),
        (#"{"ports":{"port":80}}"#, "spec.ports: expected a list"),
        (#"{"clusterIPs":[167772170]}"#, "spec.clusterIPs[0]: expected a string"),
        (#"{"sessionAffinity":"ClientIP","sessionAffinityConfig":{"clientIP":{"timeoutSeconds":"60"}}}"#,
         #"spec.sessionAffinityConfig.clientIP.timeoutSeconds: expected an integer, got "60""#),
        (#"{"externalTrafficPolicy":false}"#, "spec.externalTrafficPolicy: expected a string"),
        ("[]", "spec: expected an object"),
        ("80", "spec: expected an object"),
    ])
    func serviceFields(_ spec: String, _ message: String) throws {
        let line = try problem(APIResource.services, Self.serviceEvent(spec: spec))
        #expect(line.hasPrefix("services: Service shop/web: \(message)"), "\(line)")
    }

    @Test(arguments: [
        (#","labels":{"tier":1}"#, "metadata.labels.tier: expected a string"),
        (#","labels":["a"]"#, "metadata.labels: expected an object"),
        // Of several bad members, which come in no order, the first by name.
        (#","annotations":{"z":[],"b":2,"c":true}"#, "metadata.annotations.b: expected a string"),
        (#","labels":{"a":"\ud800"}"#, "metadata.labels.a: a string with an escape that names no character"),
    ])
    func metadataFields(_ metadata: String, _ message: String) throws {
        let line = try problem(APIResource.services, Self.serviceEvent(spec: "{}", metadata: metadata))
        #expect(line == "services: Service: \(message)")
    }

    @Test(arguments: [
        (#"{"ready":"true"}"#, #"endpoints[0].conditions.ready: expected true or false, got "true""#),
        (#"{"ready":1}"#, "endpoints[0].conditions.ready: expected true or false, got 1"),
        // YAML's other spellings of true are strings in JSON.
        (#"{"serving":"yes"}"#, #"endpoints[0].conditions.serving: expected true or false, got "yes""#),
        (#"{"terminating":null,"ready":[]}"#, "endpoints[0].conditions.ready: expected true or false, got a list"),
    ])
    func endpointConditions(_ conditions: String, _ message: String) throws {
        let line = try problem(APIResource.endpointSlices, """
            {"type":"ADDED","object":{"metadata":{"name":"web-1","namespace":"shop","resourceVersion":"9"},\
            "addressType":"IPv4","endpoints":[{"addresses":["10.244.0.5"],"conditions":\(conditions)}]}}
            """)
        #expect(line == "endpointslices: EndpointSlice shop/web-1: \(message)")
    }

    /// Numbers where the API has numbers; strings where it has strings; null as absent.
    @Test func valuesOfTheirTypes() throws {
        let decoded = try APIResource.services.decodeEvent(Self.serviceEvent(spec: """
            {"type":"NodePort","clusterIP":"10.96.0.10","clusterIPs":null,"externalIPs":null,
             "ports":[{"port":80,"targetPort":8080,"nodePort":30080},
                      {"name":"dns","protocol":"UDP","port":53.0,"targetPort":"dns-udp","nodePort":0}],
             "sessionAffinity":"ClientIP","sessionAffinityConfig":{"clientIP":{"timeoutSeconds":600}},
             "healthCheckNodePort":0,"trafficDistribution":null}
            """, metadata: #","labels":{"app":"web","empty":null}"#))
        guard case .added(_, let service?, _) = decoded.event else {
            Issue.record("expected an ADDED event with a Service, got \(decoded.event), \(String(describing: decoded.problem))")
            return
        }
        #expect(service.metadata.labels == ["app": "web", "empty": ""])
        #expect(service.clusterIPs.map(\.description) == ["10.96.0.10"])
        #expect(service.ports.map(\.targetPort) == [.number(8080), .name("dns-udp")])
        // An integral number is an integer however it is written.
        #expect(service.ports.map(\.port) == [80, 53])
        #expect(service.ports.map(\.nodePort) == [30080, nil])
        #expect(service.sessionAffinity == .clientIP(timeoutSeconds: 600))
        #expect(service.healthCheckNodePort == nil)
    }

    /// What kipvs never reads is scanned, not decoded: numbers beyond any type, lone surrogates
    /// and kinds of value kipvs would refuse where it reads them pass unnoticed.
    @Test func whatIsNotReadIsNotDecoded() throws {
        let decoded = try APIResource.services.decodeEvent(Self.serviceEvent(spec: """
            {"ports":[{"port":80,"appProtocol":1e400}],"selector":{"\\ud800":7},"allocateLoadBalancerNodePorts":"no"}
            """, metadata: #","generation":1e999,"managedFields":[{"fieldsV1":{"f:spec":{"f:ports":{"\ud800":{}}}}}]"#))
        guard case .added(_, let service?, _) = decoded.event else {
            Issue.record("expected an ADDED event with a Service, got \(decoded.event), \(String(describing: decoded.problem))")
            return
        }
        #expect(service.ports.map(\.port) == [80])
    }

    /// The same text, as an API object and as a manifest, is the same object.
    @Test func objectsReadAsManifestsRead() throws {
        let service = #"""
            {"metadata":{"name":"web","namespace":"shop","labels":{"app":"web","service.kubernetes.io/topology-mode":"Auto"},
             "annotations":{"note":"a \"quoted\" value"}},
             "spec":{"type":"LoadBalancer","clusterIP":"10.96.0.10","clusterIPs":["10.96.0.10","fd00::a"],
              "ports":[{"name":"http","protocol":"TCP","port":80,"targetPort":"http","nodePort":30080},
                       {"name":"dns","protocol":"UDP","port":53,"targetPort":5353,"nodePort":30053}],
              "externalIPs":["192.0.2.7"],"sessionAffinity":"ClientIP","sessionAffinityConfig":{"clientIP":{"timeoutSeconds":300}},
              "externalTrafficPolicy":"Local","internalTrafficPolicy":"Cluster","ipFamilies":["IPv4","IPv6"],
              "loadBalancerSourceRanges":["192.0.2.0/24"],"healthCheckNodePort":31000,"trafficDistribution":"PreferClose"},
             "status":{"loadBalancer":{"ingress":[{"ip":"203.0.113.9","ipMode":"Proxy"},{"hostname":"lb.example"}]}}}
            """#
        let slice = #"""
            {"metadata":{"name":"web-1","namespace":"shop","labels":{"kubernetes.io/service-name":"web"}},
             "addressType":"IPv4",
             "endpoints":[{"addresses":["10.244.0.5"],"conditions":{"ready":true,"serving":true,"terminating":false},
                           "nodeName":"node-a","zone":"z1","hints":{"forZones":[{"name":"z1"}],"forNodes":[{"name":"node-a"}]},
                           "targetRef":{"kind":"Pod","name":"web-5d8f","namespace":"shop"}},
                          {"addresses":["10.244.1.6"],"conditions":{"ready":false,"serving":true,"terminating":true}}],
             "ports":[{"name":"http","protocol":"TCP","port":8080},{"name":"dns","protocol":"UDP","port":5353}]}
            """#
        let node = #"""
            {"metadata":{"name":"node-a","labels":{"topology.kubernetes.io/zone":"z1"},"deletionTimestamp":"2024-05-01T10:00:00Z"},
             "spec":{"taints":[{"key":"ToBeDeletedByClusterAutoscaler","value":"1714557600","effect":"NoSchedule"}]}}
            """#
        func manifest(_ object: String, _ apiVersion: String, _ kind: String) -> String {
            #"{"apiVersion":"\#(apiVersion)","kind":"\#(kind)","# + object.dropFirst()
        }
        func event(_ object: String) -> String {
            #"{"type":"ADDED","object":"# + object.replacingOccurrences(of: #"{"metadata":{"#, with: #"{"metadata":{"resourceVersion":"5","#) + "}"
        }
        let files = try ManifestLoader.parse([manifest(service, "v1", "Service"), manifest(slice, "discovery.k8s.io/v1", "EndpointSlice"),
                                              manifest(node, "v1", "Node")].joined(separator: "\n---\n"), source: "objects.json")

        let fromServices = try APIResource.services.decodeEvent(event(service))
        guard case .added(_, let apiService?, _) = fromServices.event else {
            Issue.record("\(fromServices.event), \(String(describing: fromServices.problem))")
            return
        }
        #expect(files.services == [apiService])
        let fromSlices = try APIResource.endpointSlices.decodeEvent(event(slice))
        guard case .added(_, let apiSlice?, _) = fromSlices.event else {
            Issue.record("\(fromSlices.event), \(String(describing: fromSlices.problem))")
            return
        }
        #expect(files.endpointSlices == [apiSlice])
        let fromNodes = try APIResource.node(named: "node-a").decodeEvent(event(node))
        guard case .added(_, let apiNode?, _) = fromNodes.event else {
            Issue.record("\(fromNodes.event), \(String(describing: fromNodes.problem))")
            return
        }
        #expect(files.nodes == [apiNode])
        #expect(apiNode.isBeingDeleted)
        #expect(apiSlice.endpoints.first?.podName == "web-5d8f")
        #expect(apiService.loadBalancerIngress.count == 1)
    }
}

/// Bytes that are not the JSON the API serves: refused as malformed, in a short line, without a crash.
@Suite struct JSONBoundsTests {
    func refusal(_ body: () throws -> Void) -> String {
        do {
            try body()
        } catch let error as MalformedResponse {
            #expect(!error.description.contains("\n"))
            #expect(error.description.utf8.count < 600, "\(error.description.utf8.count) bytes")
            return error.description
        } catch {
            Issue.record("not a MalformedResponse: \(error)")
            return ""
        }
        Issue.record("accepted")
        return ""
    }

    /// Depth is counted from the event's own braces; brackets in strings are text.
    @Test func nestingIsCountedOutsideStrings() throws {
        // The event, its object and the metadata are three levels.
        let head = #"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"8","x":"#
        func event(levels: Int) -> String {
            head + String(repeating: "[", count: levels - 3) + String(repeating: "]", count: levels - 3) + "}}}"
        }
        guard case .bookmark("8") = try APIResource.services.decodeEvent(event(levels: 100)).event else {
            Issue.record("100 levels refused")
            return
        }
        let line = refusal { _ = try APIResource.services.decodeEvent(event(levels: 101)) }
        // The 98th bracket opens the 101st level.
        #expect(line == "services: nested deeper than 100 levels (at byte \(head.utf8.count + 97))")

        let brackets = String(repeating: "[{", count: 5_000)
        let inAString = #"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9","annotations":{"a":"\#(brackets)\"\\"}}}}"#
        guard case .bookmark("9") = try APIResource.services.decodeEvent(inAString).event else {
            Issue.record("brackets in a string refused")
            return
        }
    }

    @Test func bytesMustBeUTF8() throws {
        let head = Array(#"{"type":"ADDED","object":{"metadata":{"name":"web","namespace":"shop","resourceVersion":"7","labels":{"a":""#.utf8)
        let tail = Array(#""}},"spec":{}}}"#.utf8)
        let latin1 = Data(head + [0xE9, 0x74, 0xE9] + tail)
        #expect(refusal { _ = try APIResource.services.decodeEvent(latin1) } == "services: not UTF-8 text (at byte \(head.count))")
        #expect(refusal { _ = try APIResource.services.decodeList(Data([0x7B, 0xC0, 0xAF, 0x7D])) } == "services: not UTF-8 text (at byte 1)")

        let utf8 = Data(head + Array("été".utf8) + tail)
        guard case .added(_, let service?, _) = try APIResource.services.decodeEvent(utf8).event else {
            Issue.record("UTF-8 refused")
            return
        }
        #expect(service.metadata.labels == ["a": "été"])
    }

    @Test func controlCharactersInStringsAreRefused() {
        let line = #"{"type":"ADDED","object":{"metadata":{"name":"web"# + "\u{1B}[2J" + #"","resourceVersion":"7"}}}"#
        let offset = Array(line.utf8).firstIndex(of: 0x1B) ?? -1
        #expect(refusal { _ = try APIResource.services.decodeEvent(line) }
            == "services: invalid JSON: byte \(offset): control character 0x1b in a string")
    }

    @Test(arguments: [
        (#"{"type" "ADDED"}"#, "services: invalid JSON: "),
        (#"{"type":"ADDED"} {}"#, "services: invalid JSON: "),
        (#"{"type":"ADDED","object":{"metadata":"#, "services: invalid JSON: "),
        ("", "services: invalid JSON: "),
        (#"[{"type":"ADDED"}]"#, "services: expected a JSON object"),
        (#""ADDED""#, "services: expected a JSON object"),
        (#"{"type":"ADDED","object":7}"#, "services ADDED event without metadata.resourceVersion"),
    ])
    func notAnEvent(_ line: String, _ start: String) {
        let description = refusal { _ = try APIResource.services.decodeEvent(line) }
        #expect(description.hasPrefix(start), "\(description)")
    }

    @Test func listItemsMustBeAList() throws {
        let line = refusal { _ = try APIResource.services.decodeList(#"{"metadata":{"resourceVersion":"3"},"items":{"a":1}}"#) }
        #expect(line == "services list whose items are not a list")
        // Go writes an empty slice as null.
        let (page, problems) = try APIResource.services.decodeList(#"{"metadata":{"resourceVersion":"3"},"items":null}"#)
        #expect(page.items.isEmpty && problems.isEmpty && page.resourceVersion == "3")
    }

    @Test func responsesOverTheirLimitAreRefused() {
        let line = #"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"1","a":""#
            + String(repeating: "x", count: TextLimits.objectBytes) + #""}}}"#
        #expect(refusal { _ = try APIResource.services.decodeEvent(line) }
            == "services: is \(line.utf8.count) bytes; JSON over 16 MiB is refused")
    }
}
