import Proxy
import Yams

/// A response body that is not the JSON the API serves.
struct MalformedResponse: Error, CustomStringConvertible {
    var description: String
}

/// Reads list responses and watch events. JSON is YAML, so Proxy's loader reads the objects;
/// an object it rejects is reported and treated as absent, as the API server has accepted it and
/// one object must not hold up the rest.
extension APIResource {
    /// A `…List` response: its items, resourceVersion and continue token.
    func decodeList(_ text: String) throws(MalformedResponse) -> (page: ListPage<Object>, problems: [LoadError]) {
        let root = try parse(text)
        guard let version = root["metadata"]?["resourceVersion"]?.string else {
            throw MalformedResponse(description: "\(name) list without metadata.resourceVersion")
        }
        var items: [String: Object] = [:]
        var problems: [LoadError] = []
        for item in root["items"]?.sequence ?? [] {
            guard let key = item.objectKey else {
                throw MalformedResponse(description: "\(name) list item without metadata.name")
            }
            do {
                if let object = try decode(item) { items[key] = object }
            } catch {
                problems.append(error)
            }
        }
        let page = ListPage(items: items, resourceVersion: version, continueToken: root["metadata"]?["continue"]?.string)
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
            throw MalformedResponse(description: "\(name) \(type) event without metadata.resourceVersion")
        }
        if type == "BOOKMARK" { return (.bookmark(resourceVersion: version), nil) }
        guard let key = object.objectKey else {
            throw MalformedResponse(description: "\(name) \(type) event without metadata.name")
        }
        var decoded: Object?
        var problem: LoadError?
        if type != "DELETED" {
            do { decoded = try decode(object) } catch { problem = error }
        }
        switch type {
        case "ADDED": return (.added(key: key, object: decoded, resourceVersion: version), problem)
        case "MODIFIED": return (.modified(key: key, object: decoded, resourceVersion: version), problem)
        case "DELETED": return (.deleted(key: key, resourceVersion: version), nil)
        default: throw MalformedResponse(description: "\(name) watch event of unknown type \(type)")
        }
    }

    private func parse(_ text: String) throws(MalformedResponse) -> Node {
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            throw MalformedResponse(description: "\(name): invalid JSON: \(error)")
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
