/// The collections the test server holds, with their discovery entries.
public enum Resource: String, Sendable, CaseIterable {
    case services
    case endpointslices

    public var kind: String { self == .services ? "Service" : "EndpointSlice" }
    public var apiVersion: String { self == .services ? "v1" : "discovery.k8s.io/v1" }
    /// `/api/v1` or `/apis/discovery.k8s.io/v1`.
    public var groupVersionPath: String { self == .services ? "/api/v1" : "/apis/discovery.k8s.io/v1" }

    /// As the API server names it in messages: `services`, `endpointslices.discovery.k8s.io`.
    var qualifiedName: String { self == .services ? rawValue : "\(rawValue).discovery.k8s.io" }

    /// A Status's details for one object.
    func details(_ name: String) -> JSON {
        var details: JSON = ["name": .string(name), "kind": .string(rawValue)]
        if self == .endpointslices { details["group"] = "discovery.k8s.io" }
        return details
    }

    var singularName: String { self == .services ? "service" : "endpointslice" }
    var shortNames: [String] { self == .services ? ["svc"] : [] }

    var discoveryEntry: JSON {
        var entry: JSON = [
            "name": .string(rawValue), "singularName": .string(singularName), "namespaced": true, "kind": .string(kind),
            "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
        ]
        if !shortNames.isEmpty { entry["shortNames"] = .array(shortNames.map(JSON.string)) }
        if self == .services { entry["categories"] = ["all"] }
        return entry
    }
}

/// Discovery documents, in the legacy (unaggregated) form every client understands.
enum Discovery {
    static func apiVersions(serverAddress: String) -> JSON {
        ["kind": "APIVersions", "versions": ["v1"],
         "serverAddressByClientCIDRs": [["clientCIDR": "0.0.0.0/0", "serverAddress": .string(serverAddress)]]]
    }

    static let groups: JSON = [
        "kind": "APIGroupList", "apiVersion": "v1",
        "groups": [[
            "name": "discovery.k8s.io",
            "versions": [["groupVersion": "discovery.k8s.io/v1", "version": "v1"]],
            "preferredVersion": ["groupVersion": "discovery.k8s.io/v1", "version": "v1"],
        ]],
    ]

    static func resourceList(_ resource: Resource) -> JSON {
        ["kind": "APIResourceList", "apiVersion": "v1", "groupVersion": .string(resource.apiVersion),
         "resources": [resource.discoveryEntry]]
    }

    static let version: JSON = [
        "major": "1", "minor": "32", "gitVersion": "v1.32.0", "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean", "buildDate": "2024-12-11T00:00:00Z", "goVersion": "go1.23.3", "compiler": "gc",
        "platform": "linux/amd64",
    ]

    static func status(_ code: Int, reason: String, message: String, details: JSON? = nil) -> JSON {
        var status: JSON = ["kind": "Status", "apiVersion": "v1", "metadata": [:], "status": "Failure", "message": .string(message),
                            "reason": .string(reason), "code": .int(code)]
        if let details { status["details"] = details }
        return status
    }
}
