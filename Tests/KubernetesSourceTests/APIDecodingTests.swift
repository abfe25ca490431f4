import NIOCore
import Proxy
import Testing
@testable import KubernetesSource

@Suite struct APIDecodingTests {
    /// As the API serves a list: items without kind or apiVersion.
    static let serviceList = """
        {"kind":"ServiceList","apiVersion":"v1","metadata":{"resourceVersion":"812","continue":"eyJ2Ijo"},
         "items":[
          {"metadata":{"name":"web","namespace":"shop","resourceVersion":"800"},
           "spec":{"clusterIP":"10.96.0.10","clusterIPs":["10.96.0.10"],"ports":[{"port":80,"targetPort":8080,"protocol":"TCP"}]}},
          {"metadata":{"name":"mesh","namespace":"shop","labels":{"service.kubernetes.io/service-proxy-name":"other"}},
           "spec":{"clusterIP":"10.96.0.11"}},
          {"metadata":{"name":"broken","namespace":"shop"},"spec":{"ports":[{"port":"80"}]}}
         ]}
        """

    @Test func listPageKeepsOursAndReportsWhatItCannotUse() throws {
        let (page, problems) = try APIResource.services.decodeList(Self.serviceList)
        #expect(page.resourceVersion == "812")
        #expect(page.continueToken == "eyJ2Ijo")
        #expect(page.items.keys.sorted() == ["shop/web"])
        #expect(page.items["shop/web"]?.ports.first?.targetPort == .number(8080))
        #expect(problems.count == 1)
        #expect(problems.first?.description.contains("Service shop/broken") == true)
        // Reported, and marked so that the version last held for it stays.
        #expect(page.undecodable == ["shop/broken"])
    }

    /// An update kipvs cannot decode is not a deletion: it says so, and the machine keeps what it had.
    @Test(arguments: [
        (#"{"spec":{"ports":[{"port":70000}]}}"#, "Service shop/web: spec.ports[0].port: 70000 is out of range 1-65535"),
        (#"{"spec":{"ports":[{"port":80,"targetPort":"Not_A_Name"}]}}"#, "Service shop/web: spec.ports[0].targetPort: \"Not_A_Name\" must be a-z"),
    ])
    func undecodableUpdates(_ body: String, _ problem: String) throws {
        let object = body.replacingOccurrences(of: #"{"spec""#, with: #"{"metadata":{"name":"web","namespace":"shop","resourceVersion":"7"},"spec""#)
        let decoded = try APIResource.services.decodeEvent(#"{"type":"MODIFIED","object":\#(object)}"#)
        guard case .undecodable("shop/web", "7") = decoded.event else {
            Issue.record("expected an undecodable event, got \(decoded.event)")
            return
        }
        #expect(decoded.problem?.description.hasPrefix("services: \(problem)") == true, "\(String(describing: decoded.problem))")
    }

    @Test func namesAreCheckedAsTheAPIServerChecksThem() throws {
        let decoded = try APIResource.services.decodeEvent(
            #"{"type":"ADDED","object":{"metadata":{"name":"Bad_Name","namespace":"default","resourceVersion":"3"},"spec":{}}}"#)
        guard case .undecodable = decoded.event else {
            Issue.record("expected an undecodable event, got \(decoded.event)")
            return
        }
        #expect(decoded.problem?.description == "services: Service: metadata.name: \"Bad_Name\" must be a-z, 0-9 and '-', starting and ending with a letter or digit (a DNS-1123 label)")
    }

    /// Hostile response text: refused as malformed, in a short line, without a crash.
    @Test(arguments: [
        // YAML, which JSON is not.
        ("alias bomb", "{\"a\": &a [1,1,1,1,1,1,1,1,1], " + (1...20).map { "\"b\($0)\": [*a,*a,*a]" }.joined(separator: ", ") + "}", "invalid JSON"),
        ("deep", String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000), "nested deeper than 100 levels (at byte 100)"),
        ("deep, within the parser's own limit", #"{"type":"ADDED","object":"# + String(repeating: "[", count: 500) + String(repeating: "]", count: 500) + "}", "nested deeper than 100 levels"),
        ("control characters", "\u{1B}[2J\u{0}garbage", "invalid JSON"),
    ])
    func hostileText(_ what: String, _ text: String, _ fragment: String) {
        do {
            _ = try APIResource.services.decodeEvent(text)
            Issue.record("\(what): accepted")
        } catch {
            #expect(error.description.contains(fragment), "\(what): \(error.description)")
            #expect(!error.description.contains("\n") && !error.description.contains("\u{1B}"), "\(what)")
            #expect(error.description.utf8.count < 600, "\(what): \(error.description.utf8.count) bytes")
        }
    }

    @Test func unknownEventTypesAreQuotedSafely() {
        do {
            _ = try APIResource.services.decodeEvent(#"{"type":"SUR\nPRISE\u001b[31m","object":{"metadata":{"name":"x","resourceVersion":"1"}}}"#)
            Issue.record("accepted")
        } catch {
            #expect(error.description == #"services watch event of unknown type "SUR\nPRISE\u{1b}[31m""#)
        }
    }

    @Test func listWithoutAVersionIsMalformed() {
        #expect(throws: MalformedResponse.self) { try APIResource.services.decodeList(#"{"items":[]}"#) }
    }

    @Test func watchEvents() throws {
        let slices = APIResource.endpointSlices
        let added = try slices.decodeEvent("""
            {"type":"ADDED","object":{"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1",\
            "metadata":{"name":"web-1","namespace":"shop","resourceVersion":"901","labels":{"kubernetes.io/service-name":"web"}},\
            "addressType":"IPv4","endpoints":[{"addresses":["10.244.0.5"]}],"ports":[{"port":8080}]}}
            """)
        guard case .added(let key, let object?, let version) = added.event else {
            Issue.record("expected an ADDED event with an object, got \(added.event)")
            return
        }
        #expect(key == "shop/web-1")
        #expect(version == "901")
        #expect(object.serviceName == "web")

        let deleted = try slices.decodeEvent(#"{"type":"DELETED","object":{"metadata":{"name":"web-1","namespace":"shop","resourceVersion":"902"}}}"#)
        guard case .deleted("shop/web-1", "902") = deleted.event else {
            Issue.record("expected a DELETED event, got \(deleted.event)")
            return
        }

        let bookmark = try slices.decodeEvent(#"{"type":"BOOKMARK","object":{"kind":"EndpointSlice","metadata":{"resourceVersion":"950"}}}"#)
        guard case .bookmark("950") = bookmark.event else {
            Issue.record("expected a BOOKMARK, got \(bookmark.event)")
            return
        }

        let gone = try slices.decodeEvent("""
            {"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure",\
            "message":"too old resource version: 1 (900)","reason":"Expired","code":410}}
            """)
        guard case .error(410) = gone.event else {
            Issue.record("expected an ERROR 410, got \(gone.event)")
            return
        }
    }

    @Test func headlessSlicesAreNotOurs() throws {
        let event = try APIResource.endpointSlices.decodeEvent("""
            {"type":"MODIFIED","object":{"metadata":{"name":"h-1","namespace":"default","resourceVersion":"5",\
            "labels":{"service.kubernetes.io/headless":""}},"addressType":"IPv4","endpoints":[]}}
            """)
        guard case .modified("default/h-1", nil, "5") = event.event else {
            Issue.record("expected a MODIFIED event without an object, got \(event.event)")
            return
        }
    }

    @Test(arguments: ["not json", #"{"type":"ADDED"}"#, #"{"type":"ADDED","object":{"metadata":{"name":"x"}}}"#,
                      #"{"type":"SURPRISE","object":{"metadata":{"name":"x","resourceVersion":"1"}}}"#])
    func malformedEvents(line: String) {
        #expect(throws: MalformedResponse.self) { try APIResource.services.decodeEvent(line) }
    }

    @Test func linesAreSplitAcrossChunks() throws {
        var splitter = LineSplitter(maximumLength: 1 << 20)
        #expect(try splitter.append(.init(string: "{\"a\":1}\n{\"b\"")) == [#"{"a":1}"#])
        #expect(try splitter.append(.init(string: ":2}\n\n")) == [#"{"b":2}"#])
    }
}

/// Versions and continue tokens go back to the server in URLs and into logs.
@Suite struct APITokenTests {
    @Test(arguments: [
        #"{"metadata":{"resourceVersion":"12\n3"},"items":[]}"#,
        #"{"metadata":{"resourceVersion":"1 2"},"items":[]}"#,
        #"{"metadata":{"resourceVersion":""# + String(repeating: "9", count: 300) + #""},"items":[]}"#,
        #"{"metadata":{"resourceVersion":"5","continue":"a\u001bb"},"items":[]}"#,
    ])
    func badListTokens(_ text: String) {
        #expect(throws: MalformedResponse.self) { try APIResource.services.decodeList(text) }
    }

    @Test func badEventVersion() {
        #expect(throws: MalformedResponse.self) {
            try APIResource.services.decodeEvent(#"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"7\r\nX-Injected: 1"}}}"#)
        }
    }

    @Test func goodTokens() throws {
        let (page, _) = try APIResource.services.decodeList(#"{"metadata":{"resourceVersion":"81234","continue":"eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ=="},"items":[]}"#)
        #expect(page.resourceVersion == "81234")
        #expect(page.continueToken == "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ==")
    }
}
