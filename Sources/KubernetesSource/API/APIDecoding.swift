import Foundation
import Proxy

/// A response body that is not the JSON the API serves.
struct MalformedResponse: Error, CustomStringConvertible {
    var description: String
}

/// Reads list responses and watch events with Foundation's `JSONDecoder`, within the bounds
/// `JSONText` keeps; Proxy's loader reads each object, decoding only the fields kipvs uses. An
/// object it rejects is reported and its last good version kept: the API server has accepted it,
/// one object must not hold up the rest, and a change kipvs cannot read must not take a Service down.
extension APIResource {
    /// A `…List` response: its items, resourceVersion and continue token.
    func decodeList(_ text: String) throws(MalformedResponse) -> (page: ListPage<Object>, problems: [LoadError]) {
        try read { try JSONText.decode(Response.self, from: text, limit: TextLimits.listBytes, configuration: list).result }
    }

    /// The same from the response's bytes, which must be UTF-8.
    func decodeList(_ body: Data) throws(MalformedResponse) -> (page: ListPage<Object>, problems: [LoadError]) {
        try read { try JSONText.decode(Response.self, from: body, limit: TextLimits.listBytes, configuration: list).result }
    }

    /// One line of a watch stream: `{"type": "ADDED", "object": {…}}`.
    func decodeEvent(_ line: String) throws(MalformedResponse) -> (event: WatchEvent<Object>, problem: LoadError?) {
        try read { try JSONText.decode(Response.self, from: line, limit: TextLimits.objectBytes, configuration: event).result }
    }

    /// The same from the line's bytes, which must be UTF-8.
    func decodeEvent(_ line: Data) throws(MalformedResponse) -> (event: WatchEvent<Object>, problem: LoadError?) {
        try read { try JSONText.decode(Response.self, from: line, limit: TextLimits.objectBytes, configuration: event).result }
    }

    private func list(_ root: Envelope?) throws(MalformedResponse) -> (page: ListPage<Object>, problems: [LoadError]) {
        guard let root else { throw MalformedResponse(description: "\(name): expected a JSON object") }
        guard let version = root.object("metadata")?.string("resourceVersion") else {
            throw MalformedResponse(description: "\(name) list without metadata.resourceVersion")
        }
        try checkToken(version, "metadata.resourceVersion", limit: 256)
        let continueToken = root.object("metadata")?.string("continue")
        if let continueToken { try checkToken(continueToken, "metadata.continue", limit: 64 << 10) }
        var items: [String: Object] = [:]
        var undecodable: Set<String> = []
        var problems: [LoadError] = []
        guard let list = root.list("items") else {
            throw MalformedResponse(description: "\(name) list whose items are not a list")
        }
        for item in list {
            guard let key = Envelope(item)?.objectKey else {
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

    private func event(_ root: Envelope?) throws(MalformedResponse) -> (event: WatchEvent<Object>, problem: LoadError?) {
        guard let root else { throw MalformedResponse(description: "\(name): expected a JSON object") }
        guard let type = root.string("type"), let objectDecoder = root.member("object") else {
            throw MalformedResponse(description: "\(name) watch event without type or object")
        }
        let object = Envelope(objectDecoder)
        if type == "ERROR" {
            // A metav1.Status; a missing code is a server error all the same.
            return (.error(code: object?.int("code") ?? 500), nil)
        }
        guard let version = object?.object("metadata")?.string("resourceVersion") else {
            throw MalformedResponse(description: "\(name) \(Excerpt.text(type, limit: 40)) event without metadata.resourceVersion")
        }
        try checkToken(version, "metadata.resourceVersion", limit: 256)
        if type == "BOOKMARK" { return (.bookmark(resourceVersion: version), nil) }
        guard let key = object?.objectKey else {
            throw MalformedResponse(description: "\(name) \(type) event without metadata.name")
        }
        guard ["ADDED", "MODIFIED", "DELETED"].contains(type) else {
            throw MalformedResponse(description: "\(name) watch event of unknown type \(Excerpt.quoted(type, limit: 40))")
        }
        if type == "DELETED" { return (.deleted(key: key, resourceVersion: version), nil) }
        let decoded: Object?
        do {
            decoded = try decode(objectDecoder)
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

    private func read<T>(_ body: () throws -> T) throws(MalformedResponse) -> T {
        do {
            return try body()
        } catch let error as MalformedResponse {
            throw error
        } catch {
            // A TextError, which says what is wrong with the text in one line, or the decoder's own.
            throw MalformedResponse(description: "\(name): \(error is TextError ? "\(error)" : Excerpt.text("\(error)"))")
        }
    }
}

/// A response body as `read` makes it of the root object (nil when the root is not an object),
/// while the decoder's input is at hand.
private struct Response<Result>: DecodableWithConfiguration {
    let result: Result

    init(from decoder: any Decoder, configuration read: (Envelope?) throws -> Result) throws {
        result = try read(Envelope(decoder))
    }
}

/// An object of a response's envelope (the list, the event, an item's metadata). Its members are
/// read leniently: absent, null and of another type alike are nil, and the caller says what it
/// missed. The objects themselves are Proxy's to read, strictly.
private struct Envelope {
    let members: KeyedDecodingContainer<JSONKey>

    /// nil when `decoder` is not at an object.
    init?(_ decoder: any Decoder) {
        // Not an object: nil, which the caller reports.
        guard let members = try? decoder.container(keyedBy: JSONKey.self) else { return nil }
        self.members = members
    }

    /// The member's decoder; nil when absent or null.
    func member(_ key: JSONKey) -> (any Decoder)? {
        // A member that is there and not null always has a decoder.
        guard members.contains(key), (try? members.decodeNil(forKey: key)) == false else { return nil }
        return try? members.superDecoder(forKey: key)
    }

    func object(_ key: JSONKey) -> Envelope? { member(key).flatMap(Envelope.init) }

    // Of another type: nil, which the caller reports as missing.

    func string(_ key: JSONKey) -> String? { (try? members.decodeIfPresent(String.self, forKey: key)) ?? nil }

    func int(_ key: JSONKey) -> Int? { (try? members.decodeIfPresent(Int.self, forKey: key)) ?? nil }

    /// Absent or null is an empty list; nil when it is something else.
    func list(_ key: JSONKey) -> [any Decoder]? {
        guard let member = member(key) else { return [] }
        // Not a list: nil, which the caller reports.
        guard var list = try? member.unkeyedContainer() else { return nil }
        var elements: [any Decoder] = []
        elements.reserveCapacity(list.count ?? 0)
        while !list.isAtEnd {
            // An element the container has not reached yet always has a decoder.
            guard let element = try? list.superDecoder() else { break }
            elements.append(element)
        }
        return elements
    }

    /// `namespace/name`, as Proxy's `ObjectMeta.qualifiedName` spells it.
    var objectKey: String? {
        guard let metadata = object("metadata"), let name = metadata.string("name"), !name.isEmpty else { return nil }
        let namespace = metadata.string("namespace") ?? ""
        return "\(namespace.isEmpty ? "default" : namespace)/\(name)"
    }
}
