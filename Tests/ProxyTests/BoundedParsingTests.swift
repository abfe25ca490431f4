import Foundation
import Testing
@testable import Proxy

/// Hostile manifests: each is refused without a crash, in one line that names the file and quotes
/// at most a little of it, and none takes long (sizes are refused before anything is parsed).
@Suite struct BoundedParsingTests {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("kipvs-bounded-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let url = directory.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    /// The file's one problem, checked for the shape every load error has.
    func refusal(_ path: String) throws -> String {
        let error = try #require(loadError(paths: [path]))
        let line = error.description
        #expect(error.problems.count == 1)
        #expect(line.hasPrefix("\(path): "), "\(line)")
        #expect(!line.contains("\n"))
        #expect(line.utf8.count < 700, "\(line.utf8.count) bytes")
        return line
    }

    /// The classic billion laughs: nine levels of nine aliases, 856 bytes.
    static var billionLaughs: String {
        var text = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  l0: &l0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
        for level in 1...8 {
            text += "  l\(level): &l\(level) [" + Array(repeating: "*l\(level - 1)", count: 9).joined(separator: ",") + "]\n"
        }
        return text + "  ports: *l8\n"
    }

    @Test func billionLaughsIsRefused() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(Self.billionLaughs.utf8.count < 900)
        let path = try write("laughs.yaml", Array(Self.billionLaughs.utf8))
        let line = try refusal(path)
        #expect(line.contains("more than 16 YAML aliases"), "\(line)")
    }

    /// Aliases as mapping keys make the parser itself hash every expanded key.
    @Test func aliasesAsKeysAreRefused() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        var text = "a0: &a0 [" + Array(repeating: "x", count: 200).joined(separator: ", ") + "]\n"
        for level in 1...4 { text += "a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 3).joined(separator: ", ") + "]\n" }
        text += "? *a4\n: x\n"
        let line = try refusal(try write("keys.yaml", Array(text.utf8)))
        #expect(line.contains("YAML aliases expand to more than 10000 further nodes"), "\(line)")
    }

    /// Few aliases of one large node expand as much as many aliases would.
    @Test func fewAliasesOfALargeNodeAreRefused() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let big = (0..<2000).map { "i\($0)" }.joined(separator: ", ")
        let text = "spec:\n  big: &big [\(big)]\n" + (0..<6).map { "  c\($0): *big\n" }.joined()
        let line = try refusal(try write("wide.yaml", Array(text.utf8)))
        #expect(line.contains("expand to more than 10000"), "\(line)")
    }

    /// A few aliases for shared labels, as a hand-written manifest might use them, are read.
    @Test func afewAliasesAreRead() throws {
        let text = """
            apiVersion: v1
            kind: Service
            metadata: {name: web, labels: &labels {app: web, tier: front}}
            spec: {clusterIP: 10.96.0.10, ports: [{port: 80}]}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: web2, labels: &labels {app: web, tier: front}}
            spec: {clusterIP: 10.96.0.11, ports: [{port: 80}]}
            ---
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata: {name: web-1, labels: &l {kubernetes.io/service-name: web}}
            addressType: IPv4
            endpoints: [{addresses: [10.244.0.5], conditions: &c {ready: true}}, {addresses: [10.244.0.6], conditions: *c}]
            ports: [{port: 8080}]
            """
        let state = try ManifestLoader.parse(text, source: "a.yaml")
        #expect(state.services.map(\.metadata.labels) == [["app": "web", "tier": "front"], ["app": "web", "tier": "front"]])
        #expect(state.endpointSlices.first?.endpoints.map(\.conditions.ready) == [true, true])
        // `&` in quoted text is no anchor, and `*` after it no alias.
        let urls = "apiVersion: v1\nkind: Service\nmetadata: {name: web, annotations: {doc: \"https://x/?a=1&b=2 *c\"}}\nspec: {}\n"
        #expect(try ManifestLoader.parse(urls, source: "u.yaml").services.first?.metadata.annotations["doc"] == "https://x/?a=1&b=2 *c")
    }

    /// A 100 MB one-line JSON file is refused by its size before a byte of it is parsed.
    @Test func hugeFileIsRefusedBySize() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("huge.json")
        FileManager.default.createFile(atPath: url.path, contents: Data(#"{"apiVersion": "v1", "kind": "Service", "metadata": {"name": ""#.utf8))
        let handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        let chunk = Data(repeating: UInt8(ascii: "x"), count: 1 << 20)
        for _ in 0..<100 { try handle.write(contentsOf: chunk) }
        try handle.write(contentsOf: Data(#""}}"#.utf8))
        try handle.close()
        let size = try #require(try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber).intValue
        #expect(size > 100 << 20)
        #expect(try refusal(url.path) == "\(url.path): is \(size) bytes; manifests over 64 MiB are refused")
    }

    /// Text handed over directly is held to the same size.
    @Test func hugeTextIsRefusedBySize() {
        let text = "# " + String(repeating: "x", count: TextLimits.fileBytes)
        #expect(loadError(text, source: "big.yaml")?.description == "big.yaml: is \(text.utf8.count) bytes; manifests over 64 MiB are refused")
    }

    /// libyaml stops at 1,000 levels; kipvs at 100. Neither overflows a stack.
    @Test(arguments: [10_000, 990, 101])
    func deepFlowNesting(depth: Int) throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "\n"
        let line = try refusal(try write("deep.yaml", Array(text.utf8)))
        #expect(line.contains(depth >= 1000 ? "Maximum nesting level" : "nested deeper than 100 levels"), "\(line)")
    }

    @Test func deepBlockNesting() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let text = (0..<150).map { String(repeating: " ", count: $0) + "a:\n" }.joined() + String(repeating: " ", count: 150) + "b: 1\n"
        let line = try refusal(try write("block.yaml", Array(text.utf8)))
        #expect(line.contains("nested deeper than 100 levels"), "\(line)")
    }

    @Test func invalidUTF8() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let bytes = Array("apiVersion: v1\nkind: Service\nmetadata: {name: w".utf8) + [0xC3, 0x28, 0xFF] + Array("}\n".utf8)
        #expect(try refusal(try write("latin.yaml", bytes)) == "\(directory.path)/latin.yaml: is not UTF-8 text")
    }

    /// A parser error on a long line quotes a window of it, not the line.
    @Test func errorOnALongLineQuotesLittle() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let text = "{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"web\", \"annotations\": {\"a\": \""
            + String(repeating: "y", count: 1_000_000) + "\"}}} }\n"
        let path = try write("long.json", Array(text.utf8))
        let line = try refusal(path)
        #expect(line.hasPrefix("\(path): invalid YAML or JSON: line 1 column 1000096: did not find expected <document start>: …\"yyyy"),
                "\(line)")
        #expect(line.hasSuffix(#"yyyy\"}}} }""#), "\(line)")
    }

    /// Random bytes, and random bytes that are valid UTF-8 with control characters: refused, never a crash.
    @Test func binaryGarbage() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        var state: UInt64 = 0x2545_F491_4F6C_DD1D
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 33
        }
        for round in 0..<40 {
            var bytes = (0..<Int(next() % 4096 + 1)).map { _ in UInt8(truncatingIfNeeded: next()) }
            if round % 2 == 1 { bytes = bytes.map { $0 & 0x7F } }  // ASCII with control characters
            let path = try write("garbage-\(round).yaml", bytes)
            if let error = loadError(paths: [path]) {
                #expect(error.description.hasPrefix("\(path): "))
                #expect(!error.description.contains("\n"))
                #expect(error.description.utf8.count < 2000)
            }
        }
    }
}
