import Foundation
import Testing
@testable import Proxy

/// Names are checked as the API server checks them, and a bad one is one line naming the file,
/// the object and the field.
@Suite struct NameValidationTests {
    static func service(name: String, namespace: String = "default", ports: String = "[{port: 80}]") -> String {
        "apiVersion: v1\nkind: Service\nmetadata: {name: \"\(name)\", namespace: \"\(namespace)\"}\nspec: {clusterIP: 10.96.0.10, ports: \(ports)}\n"
    }

    static func slice(name: String, ports: String = "[{port: 8080}]") -> String {
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: \"\(name)\"}\naddressType: IPv4\nports: \(ports)\n"
    }

    @Test(arguments: ["web", "a", "9lives", "web-1", String(repeating: "a", count: 63)])
    func goodServiceNames(_ name: String) throws {
        let state = try ManifestLoader.parse(Self.service(name: name), source: "s.yaml")
        #expect(state.services.map(\.metadata.name) == [name])
    }

    @Test(arguments: [
        ("Web", "metadata.name: \"Web\" must be a-z, 0-9 and '-', starting and ending with a letter or digit (a DNS-1123 label)"),
        ("web_1", "metadata.name: \"web_1\" must be a-z"),
        ("-web", "metadata.name: \"-web\" must be a-z"),
        ("web-", "metadata.name: \"web-\" must be a-z"),
        ("web.shop", "metadata.name: \"web.shop\" must be a-z"),
        ("wéb", "metadata.name: \"wéb\" must be a-z"),
        (String(repeating: "a", count: 64), "is longer than 63 characters"),
    ])
    func badServiceNames(_ name: String, _ fragment: String) {
        let error = loadError(Self.service(name: name), source: "s.yaml")
        #expect(error?.problems.count == 1)
        #expect(error?.description.hasPrefix("s.yaml: Service at line 1: metadata.name: ") == true, "\(String(describing: error))")
        #expect(error?.description.contains(fragment) == true, "\(String(describing: error))")
    }

    /// A 10,000-character name is refused, and quoted in the message only in part.
    @Test func hugeNameIsRefusedAndShortened() throws {
        let error = try #require(loadError(Self.service(name: String(repeating: "a", count: 10_000)), source: "s.yaml"))
        #expect(error.description == "s.yaml: Service at line 1: metadata.name: \"\(String(repeating: "a", count: 200))…\" (10000 bytes) is longer than 63 characters")
    }

    @Test(arguments: [
        ("shop", nil),
        ("", nil),  // kubectl's default
        ("Shop", "metadata.namespace: \"Shop\" must be a-z"),
        ("kube.system", "metadata.namespace: \"kube.system\" must be a-z"),
        (String(repeating: "n", count: 64), "metadata.namespace: \"\(String(repeating: "n", count: 64))\" is longer than 63 characters"),
    ] as [(String, String?)])
    func namespaces(_ namespace: String, _ fragment: String?) {
        let error = loadError(Self.service(name: "web", namespace: namespace), source: "s.yaml")
        if let fragment {
            #expect(error?.description == "s.yaml: Service at line 1: \(fragment)"
                || error?.description.hasPrefix("s.yaml: Service at line 1: \(fragment)") == true, "\(String(describing: error))")
        } else {
            #expect(error == nil)
        }
    }

    @Test(arguments: ["web-abc12", "web.v1-x", "a", String(repeating: "a", count: 63) + "." + String(repeating: "b", count: 63)])
    func goodSliceNames(_ name: String) throws {
        let state = try ManifestLoader.parse(Self.slice(name: name), source: "e.yaml")
        #expect(state.endpointSlices.map(\.metadata.name) == [name])
    }

    @Test(arguments: [
        ("web..1", "a DNS-1123 subdomain"),
        (".web", "a DNS-1123 subdomain"),
        ("Web-1", "a DNS-1123 subdomain"),
        (String(repeating: "a", count: 254), "is longer than 253 characters"),
    ])
    func badSliceNames(_ name: String, _ fragment: String) {
        let error = loadError(Self.slice(name: name), source: "e.yaml")
        #expect(error?.description.hasPrefix("e.yaml: EndpointSlice at line 1: metadata.name: ") == true, "\(String(describing: error))")
        #expect(error?.description.contains(fragment) == true, "\(String(describing: error))")
    }

    /// Service and slice port names are DNS-1123 labels; a named targetPort is an IANA service name.
    @Test(arguments: [
        ("[{name: http, port: 80}, {name: metrics-9090, port: 9090}]", nil),
        ("[{name: HTTP, port: 80}]", "spec.ports[0].name: \"HTTP\" must be a-z"),
        ("[{name: \(String(repeating: "p", count: 64)), port: 80}]", "spec.ports[0].name: \"\(String(repeating: "p", count: 64))\" is longer than 63 characters"),
        ("[{port: 80, targetPort: http-web}]", nil),
        ("[{port: 80, targetPort: a-very-long-name}]", "spec.ports[0].targetPort: \"a-very-long-name\" is longer than 15 characters"),
        ("[{port: 80, targetPort: \"8080a--b\"}]", "spec.ports[0].targetPort: \"8080a--b\" must not contain '--'"),
        ("[{port: 80, targetPort: \"80-80\"}]", "spec.ports[0].targetPort: \"80-80\" must be a-z, 0-9 and '-' with at least one letter"),
        ("[{port: 80, targetPort: http_web}]", "spec.ports[0].targetPort: \"http_web\" must be a-z"),
        ("[{port: 80, targetPort: \"\"}]", "spec.ports[0].targetPort: empty"),
    ] as [(String, String?)])
    func servicePortNames(_ ports: String, _ fragment: String?) {
        let error = loadError(Self.service(name: "web", ports: ports), source: "s.yaml")
        if let fragment {
            #expect(error?.description.hasPrefix("s.yaml: Service default/web: \(fragment)") == true, "\(String(describing: error))")
        } else {
            #expect(error == nil, "\(String(describing: error))")
        }
    }

    @Test func slicePortNames() {
        #expect(loadError(Self.slice(name: "web-1", ports: "[{name: http, port: 8080}, {name: \"\", port: 9090}]"), source: "e.yaml") == nil)
        #expect(loadError(Self.slice(name: "web-1", ports: "[{name: Http, port: 8080}]"), source: "e.yaml")?.description
            .hasPrefix("e.yaml: EndpointSlice default/web-1: ports[0].name: \"Http\" must be a-z") == true)
    }
}

/// Quoting input in messages.
@Suite struct ExcerptTests {
    @Test func controlCharactersAreEscaped() {
        #expect(Excerpt.text("a\nb\r\tc\u{0}\u{1B}[31m\u{7F}\u{85}\u{2028}\u{202E}\"\\") == "a\\nb\\r\\tc\\u{0}\\u{1b}[31m\\u{7f}\\u{85}\\u{2028}\\u{202e}\\\"\\\\")
    }

    @Test func longTextIsCutAndMeasured() {
        let text = String(repeating: "x", count: 5000)
        #expect(Excerpt.text(text) == String(repeating: "x", count: 200) + "… (5000 bytes)")
        #expect(Excerpt.quoted(text, limit: 3) == "\"xxx…\" (5000 bytes)")
        #expect(Excerpt.quoted("xxx", limit: 3) == "\"xxx\"")
    }

    @Test func bytesThatAreNotText() {
        #expect(Excerpt.bytes([0x6F, 0x6B, 0xFF, 0x0A]) == "ok\u{FFFD}\\n")
        let body = [UInt8](repeating: 0x41, count: 100_000)
        #expect(Excerpt.bytes(body) == String(repeating: "A", count: 200) + "… (100000 bytes)")
    }
}
