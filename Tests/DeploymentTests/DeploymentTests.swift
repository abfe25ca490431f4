import Foundation
import Testing
import Yams
@testable import Proxy

/// The container image recipe and the manifests, read as files: no container engine runs here.
@Suite struct DeploymentTests {
    static let containers = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("containers")

    static func text(_ name: String) throws -> String {
        try String(contentsOf: containers.appendingPathComponent(name), encoding: .utf8)
    }

    /// Every document of kipvs.yaml, by kind.
    static func manifests() throws -> [String: [String: Any]] {
        var byKind: [String: [String: Any]] = [:]
        for document in try Yams.load_all(yaml: text("kipvs.yaml")) {
            let object = try #require(document as? [String: Any])
            byKind[try #require(object["kind"] as? String)] = object
        }
        return byKind
    }

    static func podSpec() throws -> [String: Any] {
        let daemonSet = try #require(try manifests()["DaemonSet"])
        return try #require(daemonSet[path: "spec", "template", "spec"] as? [String: Any])
    }

    static func agentContainer() throws -> [String: Any] {
        let containers = try #require(try podSpec()["containers"] as? [[String: Any]])
        try #require(containers.count == 1)
        return containers[0]
    }

    @Test func everyObjectIsThere() throws {
        #expect(Set(try Self.manifests().keys) == ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "DaemonSet"])
    }

    @Test func clusterRoleReadsServicesEndpointSlicesAndNodesOnly() throws {
        let role = try #require(try Self.manifests()["ClusterRole"])
        let rules = try #require(role["rules"] as? [[String: Any]])
        let granted = Set(rules.flatMap { rule -> [String] in
            let groups = rule["apiGroups"] as? [String] ?? []
            let resources = rule["resources"] as? [String] ?? []
            let verbs = rule["verbs"] as? [String] ?? []
            #expect(rule["resourceNames"] == nil && rule["nonResourceURLs"] == nil)
            return groups.flatMap { group in resources.flatMap { resource in verbs.map { "\(group)/\(resource):\($0)" } } }
        })
        #expect(granted == [
            "/services:get", "/services:list", "/services:watch", "/nodes:get", "/nodes:list", "/nodes:watch",
            "discovery.k8s.io/endpointslices:get", "discovery.k8s.io/endpointslices:list", "discovery.k8s.io/endpointslices:watch",
        ])
    }

    @Test func bindingGivesTheRoleToTheServiceAccount() throws {
        let manifests = try Self.manifests()
        let binding = try #require(manifests["ClusterRoleBinding"])
        #expect(binding[path: "roleRef", "kind"] as? String == "ClusterRole")
        #expect(binding[path: "roleRef", "name"] as? String == "kipvs")
        let subjects = try #require(binding["subjects"] as? [[String: Any]])
        #expect(subjects.count == 1)
        #expect(subjects.first?["kind"] as? String == "ServiceAccount")
        #expect(subjects.first?["name"] as? String == manifests["ServiceAccount"]?[path: "metadata", "name"] as? String)
        #expect(subjects.first?["namespace"] as? String == "kube-system")
        #expect(try Self.podSpec()["serviceAccountName"] as? String == "kipvs")
    }

    @Test func podRunsOnEveryNodeInTheHostNetwork() throws {
        let spec = try Self.podSpec()
        #expect(spec["hostNetwork"] as? Bool == true)
        #expect(spec["priorityClassName"] as? String == "system-node-critical")
        let tolerations = try #require(spec["tolerations"] as? [[String: Any]])
        #expect(tolerations.contains { $0["operator"] as? String == "Exists" && $0["key"] == nil && $0["effect"] == nil })
    }

    @Test func agentHasNetAdminAndNothingMore() throws {
        let security = try #require(try Self.agentContainer()["securityContext"] as? [String: Any])
        #expect(security["privileged"] == nil || security["privileged"] as? Bool == false)
        #expect(security[path: "capabilities", "add"] as? [String] == ["NET_ADMIN"])
        #expect(security[path: "capabilities", "drop"] as? [String] == ["ALL"])
    }

    @Test func onlyTheSysctlInitContainerIsPrivilegedAndItSetsWhatTheAgentNeeds() throws {
        let initContainers = try #require(try Self.podSpec()["initContainers"] as? [[String: Any]])
        #expect(initContainers.count == 1)
        let sysctls = try #require(initContainers.first)
        #expect(sysctls[path: "securityContext", "privileged"] as? Bool == true)
        let script = (sysctls["command"] as? [String] ?? []).joined(separator: "\n")
        // The same settings the agent checks at start, so that it finds them set.
        for kernel in ["5.4.0", "6.8.0"] {
            for (key, value) in KernelSettings.required(kernelRelease: kernel) {
                #expect(script.contains("echo \(value) > /proc/sys/\(key.replacingOccurrences(of: ".", with: "/"))"), "\(key)")
            }
        }
    }

    @Test func nodeNameComesFromTheDownwardAPI() throws {
        let env = try #require(try Self.agentContainer()["env"] as? [[String: Any]])
        let nodeName = try #require(env.first { $0["name"] as? String == "NODE_NAME" })
        #expect(nodeName[path: "valueFrom", "fieldRef", "fieldPath"] as? String == "spec.nodeName")
    }

    @Test func livenessAsksLivezAndReadinessHealthz() throws {
        let container = try Self.agentContainer()
        for (probe, path) in [("livenessProbe", "/livez"), ("readinessProbe", "/healthz")] {
            #expect(container[path: probe, "httpGet", "path"] as? String == path, "\(probe)")
            #expect(container[path: probe, "httpGet", "port"] as? Int == 10256, "\(probe)")
        }
        #expect((container["args"] as? [String])?.contains("--source=kubernetes") == true)
    }

    @Test func imageIsAStaticBuildOnSlimBookworm() throws {
        let recipe = try Self.text("Containerfile")
        #expect(recipe.split(separator: "\n").filter { $0.hasPrefix("FROM ") }.count == 2)
        #expect(recipe.contains("FROM docker.io/library/swift:"))
        #expect(recipe.contains("swift build -c release --static-swift-stdlib"))
        let runtime = try #require(recipe.components(separatedBy: "\nFROM ").last)
        #expect(runtime.hasPrefix("docker.io/library/debian:bookworm-slim"))
        let installed = runtime.components(separatedBy: "--no-install-recommends").last?
            .prefix { $0 != "&" }.split(whereSeparator: { " \\\n".contains($0) }).map(String.init)
        #expect(installed == ["libmnl0", "ipvsadm", "iproute2"])
        #expect(runtime.contains("COPY --from=build /out/kipvs /usr/local/bin/kipvs"))
    }
}

extension Dictionary where Key == String, Value == Any {
    /// The value at a path of nested mappings.
    subscript(path keys: String...) -> Any? {
        var current: Any? = self
        for key in keys { current = (current as? [String: Any])?[key] }
        return current
    }
}
