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
