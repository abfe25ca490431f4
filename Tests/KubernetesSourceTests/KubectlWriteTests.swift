import Foundation
import KubeAPIServer
import Testing

/// The test server's writes, made by the real kubectl: server-side apply, create, replace,
/// delete, and the errors kubectl reports from them. Skipped where kubectl is not installed.
/// `--validate=false`: validation would fetch the OpenAPI documents, which the server does not serve.
@Suite(.serialized, .enabled(if: Kubectl.path != nil, "kubectl is not installed"))
struct KubectlWriteTests {
    /// The Service shop and its EndpointSlice with these addresses, as YAML.
    static func shop(_ addresses: [String], resourceVersion: String? = nil) -> String {
        let version = resourceVersion.map { ", resourceVersion: \"\($0)\"" } ?? ""
        return """
            apiVersion: v1
            kind: Service
            metadata: {name: shop, namespace: store\(version)}
            spec:
              type: ClusterIP
              clusterIP: 10.96.0.20
              ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]
            ---
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata:
              name: shop-5kq9w
              namespace: store
              labels: {kubernetes.io/service-name: shop}
            addressType: IPv4
            ports: [{name: http, port: 8080, protocol: TCP}]
            endpoints:

            """ + addresses.map { "- {addresses: [\($0)], conditions: {ready: true}}\n" }.joined()
    }

    func file(_ kubectl: Kubectl, _ text: String) throws -> String {
        let path = "\(kubectl.home)/objects-\(UUID().uuidString).yaml"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    func addresses(_ server: KubeAPIServer) -> [String] {
        guard case .array(let endpoints)? = server.objects(.endpointslices)["store/shop-5kq9w"]?["endpoints"] else { return [] }
        return endpoints.compactMap { endpoint in
            guard case .array(let addresses)? = endpoint["addresses"] else { return nil }
            return addresses.first?.string
        }
    }

    @Test func applyThenApplyAgainThenDeleteAndAWatchSeesEachChange() async throws {
        try await KubeAPIServer.withServer { server in
            let kubectl = Kubectl(server: server)
            let watch = try kubectl.start(["get", "endpointslices", "-A", "--watch-only", "--output-watch-events",
                                           "-o", "jsonpath={.type} {.object.metadata.name} {.object.endpoints[*].addresses[0]}{\"\\n\"}"])
            defer { watch.stop() }
            try await waitUntil { server.openWatches > 0 }

            let one = try file(kubectl, Self.shop(["10.244.0.5"]))
            let applied = try await kubectl.run(["apply", "--server-side", "--validate=false", "-f", one])
            #expect(applied == "service/shop serverside-applied\nendpointslice.discovery.k8s.io/shop-5kq9w serverside-applied\n")
            #expect(server.objects(.services)["store/shop"]?["spec"]?["clusterIP"] == "10.96.0.20")
            #expect(addresses(server) == ["10.244.0.5"])
            let created = server.resourceVersion
            let uid = server.objects(.endpointslices)["store/shop-5kq9w"]?["metadata"]?["uid"]

            let three = try file(kubectl, Self.shop(["10.244.0.5", "10.244.1.6", "10.244.2.7"]))
            _ = try await kubectl.run(["apply", "--server-side", "--validate=false", "-f", three])
            #expect(addresses(server) == ["10.244.0.5", "10.244.1.6", "10.244.2.7"])
            #expect(server.resourceVersion == created + 2)
            #expect(server.objects(.endpointslices)["store/shop-5kq9w"]?["metadata"]?["uid"] == uid)

            let deleted = try await kubectl.run(["delete", "-f", three])
            #expect(deleted == "service \"shop\" deleted\nendpointslice.discovery.k8s.io \"shop-5kq9w\" deleted\n")
            #expect(server.objects(.services).isEmpty)
            #expect(server.objects(.endpointslices).isEmpty)

            let expected = """
                ADDED shop-5kq9w 10.244.0.5
                MODIFIED shop-5kq9w 10.244.0.5 10.244.1.6 10.244.2.7
                DELETED shop-5kq9w 10.244.0.5 10.244.1.6 10.244.2.7

                """
            try await waitUntil { watch.output == expected }
        }
    }

    @Test func createTwiceIsAlreadyExists() async throws {
        try await KubeAPIServer.withServer { server in
            let kubectl = Kubectl(server: server)
            let path = try file(kubectl, Self.shop(["10.244.0.5"]))
            let created = try await kubectl.run(["create", "--validate=false", "-f", path])
            #expect(created == "service/shop created\nendpointslice.discovery.k8s.io/shop-5kq9w created\n")
            let error = await #expect(throws: TimedOut.self) { try await kubectl.run(["create", "--validate=false", "-f", path]) }
            #expect(error?.description.contains("Error from server (AlreadyExists)") == true)
            #expect(error?.description.contains("endpointslices.discovery.k8s.io \"shop-5kq9w\" already exists") == true)
        }
    }

    @Test func replaceNeedsTheObjectAndItsCurrentVersion() async throws {
        try await KubeAPIServer.withServer { server in
            let kubectl = Kubectl(server: server)
            let path = try file(kubectl, Self.shop(["10.244.0.5"]))
            let missing = await #expect(throws: TimedOut.self) { try await kubectl.run(["replace", "--validate=false", "-f", path]) }
            #expect(missing?.description.contains("services \"shop\" not found") == true)

            _ = try await kubectl.run(["create", "--validate=false", "-f", path])
            let replaced = try await kubectl.run(["replace", "--validate=false", "-f", try file(kubectl, Self.shop(["10.244.3.8"]))])
            #expect(replaced == "service/shop replaced\nendpointslice.discovery.k8s.io/shop-5kq9w replaced\n")
            #expect(addresses(server) == ["10.244.3.8"])

            let stale = try file(kubectl, Self.shop(["10.244.0.5"], resourceVersion: "1"))
            let conflict = await #expect(throws: TimedOut.self) { try await kubectl.run(["replace", "--validate=false", "-f", stale]) }
            #expect(conflict?.description.contains("Error from server (Conflict)") == true)
        }
    }

    @Test func deleteOfAMissingObjectIsNotFound() async throws {
        try await KubeAPIServer.withServer { server in
            let kubectl = Kubectl(server: server)
            let error = await #expect(throws: TimedOut.self) { try await kubectl.run(["delete", "service", "shop", "-n", "store"]) }
            #expect(error?.description.contains("Error from server (NotFound): services \"shop\" not found") == true)
        }
    }

    @Test func patchesOtherThanApplyAreUnsupported() async throws {
        try await KubeAPIServer.withServer { server in
            server.put(.services, Objects.service("shop", namespace: "store", clusterIP: "10.96.0.20"))
            let version = server.resourceVersion
            let error = await #expect(throws: TimedOut.self) {
                try await Kubectl(server: server).run(["patch", "service", "shop", "-n", "store", "--type", "merge",
                                                       "-p", "{\"spec\":{\"clusterIP\":\"10.96.0.21\"}}"])
            }
            #expect(error?.description.contains("application/merge-patch+json is not supported") == true)
            #expect(server.resourceVersion == version)
        }
    }
}
