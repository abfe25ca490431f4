import Proxy
import Yams

/// A response body that is not the JSON the API serves.
struct MalformedResponse: Error, CustomStringConvertible {
    var description: String
}

/// Reads list responses and watch events. JSON is YAML, so Proxy's loader reads the objects,
/// within the same bounds as manifests. An object it rejects is reported and its last good version
/// kept: the API server has accepted it, one object must not hold up the rest, and a change kipvs
/// cannot read must not take a Service down.
extension APIResource {
    /// A `…List` response: its items, resourceVersion and continue token.
    func decodeList(_ text: String) throws(MalformedResponse) -> (page: ListPage<Object>, problems: [LoadError]) {
        let root = try parse(text)
        guard let version = root["metadata"]?["resourceVersion"]?.string else {
            throw MalformedResponse(description: "\(name) list without metadata.resourceVersion")
        }
        try checkToken(version, "metadata.resourceVersion", limit: 256)
        let continueToken = root["metadata"]?["continue"]?.string
        if let continueToken { try checkToken(continueToken, "metadata.continue", limit: 64 << 10) }
        var items: [String: Object] = [:]
        var undecodable: Set<String> = []
        var problems: [LoadError] = []
        for item in root["items"]?.sequence ?? [] {
            guard let key = item.objectKey else {
                throw MalformedResponse(description: "\(name) list item without metadata.name")
            }
            do {
                if let object = try decode(item) { items[key] = object }
            } catch {
                undecodable.insert(key)
                problems.append(error)
            }
        }
        let page = ListPage(items: items, resourceVersion: version, continueToken: continueToken,
                            undecodable: undecodable)
        return (page, problems)
    }

    /// One line of a watch stream: `{"type": "ADDED", "object": {…}}`.
    func decodeEvent(_ line: String) throws(MalformedResponse) -> (event: WatchEvent<Object>, problem: LoadError?) {
        let root = try parse(line)
        guard let type = root["type"]?.string, let object = root["object"] else {
            throw MalformedResponse(description: "\(name) watch event without type or object")
        }
        if type == "ERROR" {
            // A metav1.Status; a missing code is a server error all the same.
            return (.error(code: object["code"]?.int ?? 500), nil)
        }
        guard let version = object["metadata"]?["resourceVersion"]?.string else {
            throw MalformedResponse(description: "\(name) \(Excerpt.text(type, limit: 40)) event without metadata.resourceVersion")
        }
        try checkToken(version, "metadata.resourceVersion", limit: 256)
        if type == "BOOKMARK" { return (.bookmark(resourceVersion: version), nil) }
        guard let key = object.objectKey else {
            throw MalformedResponse(description: "\(name) \(type) event without metadata.name")
        }
        guard ["ADDED", "MODIFIED", "DELETED"].contains(type) else {
            throw MalformedResponse(description: "\(name) watch event of unknown type \(Excerpt.quoted(type, limit: 40))")
        }
        if type == "DELETED" { return (.deleted(key: key, resourceVersion: version), nil) }
        let decoded: Object?
        do {
            decoded = try decode(object)
        } catch {
            return (.undecodable(key: key, resourceVersion: version), error)
        }
        return type == "ADDED" ? (.added(key: key, object: decoded, resourceVersion: version), nil)
            : (.modified(key: key, object: decoded, resourceVersion: version), nil)
    }

    /// A version or continue token goes back to the server in a URL and into logs: printable
    /// ASCII of a sane length only (the API server's are decimal numbers and base64).
    private func checkToken(_ token: String, _ field: String, limit: Int) throws(MalformedResponse) {
        guard token.utf8.count <= limit, token.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw MalformedResponse(description: "\(name): \(field) \(Excerpt.quoted(token, limit: 40)) is not a token kipvs can send back")
        }
    }

    private func parse(_ text: String) throws(MalformedResponse) -> Node {
        let node: Node?
        do {
            node = try YAMLText.document(in: text)
        } catch {
            throw MalformedResponse(description: "\(name): \(error)")
        }
        guard let node, node.mapping != nil else { throw MalformedResponse(description: "\(name): expected a JSON object") }
        return node
    }
}

extension Node {
    /// `namespace/name`, as Proxy's `ObjectMeta.qualifiedName` spells it.
    var objectKey: String? {
        guard let name = self["metadata"]?["name"]?.string, !name.isEmpty else { return nil }
        let namespace = self["metadata"]?["namespace"]?.string ?? ""
        return "\(namespace.isEmpty ? "default" : namespace)/\(name)"
    }
}
