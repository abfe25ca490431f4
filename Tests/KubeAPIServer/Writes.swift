import Foundation
import NIOHTTP1

/// Writes as the API server answers them, enough for `kubectl create|replace|apply --server-side|delete`:
/// POST creates (201; 409 AlreadyExists), PUT replaces (200; 404 when missing, 409 Conflict on a stale
/// resourceVersion), DELETE answers the object as it was (200; 404), and PATCH takes server-side apply
/// (`application/apply-patch+yaml`). Each change is a new resourceVersion and a watch event; every
/// error is a `Status`. Namespaced paths only; no generateName, dry run or DeleteOptions.
extension KubeAPIServer {
    static let applyPatch = "application/apply-patch+yaml"

    func write(_ method: HTTPMethod, _ target: APIRequest.Target, _ request: APIRequest, contentType: String?,
               body: String) -> (Int, JSON) {
        let resource = target.resource
        guard let namespace = target.namespace,
              method == .POST ? target.name == nil : target.name != nil,
              [.POST, .PUT, .PATCH, .DELETE].contains(method) else {
            return (405, Discovery.status(405, reason: "MethodNotAllowed",
                                          message: "the server does not allow this method on the requested resource"))
        }
        if method == .DELETE {
            // The body, DeleteOptions, is not read: nothing here has finalizers or dependents.
            let name = target.name!
            guard let object = store.remove(resource, namespace: namespace, name: name) else {
                return Self.notFound(resource, name)
            }
            return (200, object)
        }
        if method == .PATCH && contentType?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces) != Self.applyPatch {
            return (415, Discovery.status(415, reason: "UnsupportedMediaType",
                                          message: "the body of the request was in an unknown format - accepted media types include: "
                                              + Self.applyPatch))
        }
        var object: JSON
        do {
            object = try JSONDecoder().decode(JSON.self, from: Data(body.utf8))
        } catch {
            // kubectl sends apply patches as JSON, which YAML includes; other YAML is not read here.
            return Self.badRequest("the body is not a JSON object: \(error)")
        }
        guard case .object = object else { return Self.badRequest("the body is not a JSON object") }
        if let kind = object["kind"]?.string, kind != resource.kind {
            return Self.badRequest("the kind of the provided object (\(kind)) does not match \(resource.kind)")
        }
        if let apiVersion = object["apiVersion"]?.string, apiVersion != resource.apiVersion {
            return Self.badRequest("the apiVersion of the provided object (\(apiVersion)) does not match \(resource.apiVersion)")
        }
        if method == .PATCH && (object["kind"] == nil || object["apiVersion"] == nil) {
            return Self.badRequest("an apply patch needs kind and apiVersion")
        }
        if object["metadata"] == nil { object["metadata"] = [:] }
        if let given = object["metadata"]?["namespace"]?.string, !given.isEmpty, given != namespace {
            return Self.badRequest("the namespace of the provided object does not match the namespace sent on the request")
        }
        object["metadata"]?["namespace"] = .string(namespace)
        let name: String
        if let urlName = target.name {
            if let given = object["metadata"]?["name"]?.string, !given.isEmpty, given != urlName {
                return Self.badRequest("the name of the object (\(given)) does not match the name on the URL (\(urlName))")
            }
            name = urlName
            object["metadata"]?["name"] = .string(name)
        } else {
            guard let given = object["metadata"]?["name"]?.string, !given.isEmpty else {
                return (422, Discovery.status(422, reason: "Invalid", message: "\(resource.kind) \"\": metadata.name: Required value",
                                              details: ["kind": .string(resource.rawValue)]))
            }
            name = given
        }
        // Server-side apply without field ownership: the applied fields replace the object whole
        // (a real server keeps fields other managers own, and may report conflicts with them).
        let precondition: ObjectStore.Precondition = switch method {
        case .POST: .absent
        case .PUT: .present
        default: .none
        }
        if method == .PATCH { object["metadata"]?["resourceVersion"] = nil }
        switch store.write(resource, object, requiring: precondition) {
        case .written(let stored, let created):
            return (created && method != .PUT ? 201 : 200, stored)
        case .alreadyExists:
            return (409, Discovery.status(409, reason: "AlreadyExists", message: "\(resource.qualifiedName) \"\(name)\" already exists",
                                          details: resource.details(name)))
        case .notFound:
            return Self.notFound(resource, name)
        case .conflict:
            return (409, Discovery.status(409, reason: "Conflict",
                                          message: "Operation cannot be fulfilled on \(resource.qualifiedName) \"\(name)\": the object has "
                                              + "been modified; please apply your changes to the latest version and try again",
                                          details: resource.details(name)))
        }
    }

    static func notFound(_ resource: Resource, _ name: String) -> (Int, JSON) {
        (404, Discovery.status(404, reason: "NotFound", message: "\(resource.qualifiedName) \"\(name)\" not found",
                               details: resource.details(name)))
    }

    private static func badRequest(_ message: String) -> (Int, JSON) {
        (400, Discovery.status(400, reason: "BadRequest", message: message))
    }
}
