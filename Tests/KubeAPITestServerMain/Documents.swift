import Foundation
import KubeAPIServer
import Yams

/// The objects in an admin request body: JSON (an object, an array of objects, or a `List`) or
/// YAML (documents separated by `---`, each an object or a `List`).
enum Documents {
    struct Invalid: Error, CustomStringConvertible {
        var description: String

        init(_ description: String) {
            self.description = description
        }
    }

    /// Every object, each with the collection it belongs to; empty documents are skipped.
    static func parse(_ text: String) throws(Invalid) -> [(Resource, JSON)] {
        var objects: [(Resource, JSON)] = []
        for root in try roots(text) { try collect(root, into: &objects) }
        return objects
    }

    /// JSON goes to `JSONDecoder`, much the faster for the large bodies benchmarks send.
    private static func roots(_ text: String) throws(Invalid) -> [JSON] {
        let first = text.first { !$0.isWhitespace }
        if first == "{" || first == "[" {
            do {
                return [try JSONDecoder().decode(JSON.self, from: Data(text.utf8))]
            } catch {
                throw Invalid("invalid JSON: \(error)")
            }
        }
        do {
            let parser = try Parser(yaml: text)
            var roots: [JSON] = []
            while let node = try parser.nextRoot() { roots.append(try json(node)) }
            return roots
        } catch let error as Invalid {
            throw error
        } catch {
            throw Invalid("invalid YAML: \(error)")
        }
    }

    private static func collect(_ value: JSON, into objects: inout [(Resource, JSON)]) throws(Invalid) {
        switch value {
        case .null:
            return
        case .array(let items):
            for item in items { try collect(item, into: &objects) }
        case .object:
            guard let kind = value["kind"]?.string else { throw Invalid("an object without kind") }
            if kind == "List" || kind.hasSuffix("List") {
                guard case .array(let items)? = value["items"] else { throw Invalid("a \(kind) without items") }
                for item in items { try collect(item, into: &objects) }
                return
            }
            guard let resource = Resource.allCases.first(where: { $0.kind == kind }) else {
                throw Invalid("kind \(kind): this server holds Service and EndpointSlice")
            }
            if let apiVersion = value["apiVersion"]?.string, apiVersion != resource.apiVersion {
                throw Invalid("\(kind) of apiVersion \(apiVersion): this server holds \(resource.apiVersion)")
            }
            guard let name = value["metadata"]?["name"]?.string, !name.isEmpty else {
                throw Invalid("a \(kind) without metadata.name")
            }
            objects.append((resource, value))
        default:
            throw Invalid("a document that is not an object: \(value.text.prefix(80))")
        }
    }

    /// A YAML node as JSON, its scalars typed by YAML's tag resolution (a quoted "80" stays a string).
    private static func json(_ node: Node) throws(Invalid) -> JSON {
        switch node {
        case .mapping(let mapping):
            var members: [String: JSON] = [:]
            for (key, value) in mapping {
                guard let name = key.string else { throw Invalid("a mapping key that is not a string") }
                members[name] = try json(value)
            }
            return .object(members)
        case .sequence(let sequence):
            var values: [JSON] = []
            for item in sequence { values.append(try json(item)) }
            return .array(values)
        case .scalar(let scalar):
            switch Tag.Name(rawValue: node.tag.description) {
            case .null: return .null
            case .bool: return Bool.construct(from: scalar).map(JSON.bool) ?? .string(scalar.string)
            case .int:
                guard let value = Int.construct(from: scalar) else { throw Invalid("integer out of range: \(scalar.string)") }
                return .int(value)
            case .float: throw Invalid("\(scalar.string): numbers must be integers")
            default: return .string(scalar.string)
            }
        case .alias:
            throw Invalid("YAML aliases are not supported")
        }
    }
}
