import Foundation
import IPVS
import Testing
@testable import Proxy

/// The error a load fails with; nil when it succeeds.
func loadError(_ text: String, source: String) -> LoadError? {
    do {
        _ = try ManifestLoader.parse(text, source: source)
        return nil
    } catch {
        return error
    }
}

func loadError(paths: [String]) -> LoadError? {
    do {
        _ = try ManifestLoader.load(paths: paths)
        return nil
    } catch {
        return error
    }
}

@Suite struct LoaderTests {
    @Test func fullService() throws {
        let state = try ManifestLoader.parse("""
            apiVersion: v1
            kind: Service
            metadata:
              name: web
              namespace: shop
              labels: {app: web}
              annotations:
                kipvs.io/scheduler: lc
              uid: 1b4e28ba-2fa1-11d2-883f-0016d3cca427
            spec:
              type: LoadBalancer
              clusterIP: 10.96.0.10
              clusterIPs: [10.96.0.10, "fd00:96::10"]
              ipFamilies: [IPv4, IPv6]
              ipFamilyPolicy: PreferDualStack
              ports:
              - name: http
                protocol: TCP
                port: 80
                targetPort: http-web
                nodePort: 30080
              - name: dns
                protocol: UDP
                port: 53
                targetPort: 5353
              externalIPs: [198.51.100.4]
              sessionAffinity: ClientIP
              sessionAffinityConfig:
                clientIP:
                  timeoutSeconds: 600
              externalTrafficPolicy: Local
              internalTrafficPolicy: Local
              selector: {app: web}
            status:
              loadBalancer:
                ingress:
                - ip: 203.0.113.7
                - hostname: lb.example.com
                - ip: 203.0.113.8
                  ipMode: Proxy
            """, source: "web.yaml")
        #expect(state.endpointSlices.isEmpty)
        #expect(state.services == [Service(
            metadata: ObjectMeta(name: "web", namespace: "shop", labels: ["app": "web"],
                                 annotations: ["kipvs.io/scheduler": "lc"]),
            type: .loadBalancer,
            clusterIPs: [ip("10.96.0.10"), ip("fd00:96::10")],
            ports: [Service.Port(name: "http", protocol: .tcp, port: 80, targetPort: .name("http-web"), nodePort: 30080),
                    Service.Port(name: "dns", protocol: .udp, port: 53, targetPort: .number(5353))],
            externalIPs: [ip("198.51.100.4")],
            sessionAffinity: .clientIP(timeoutSeconds: 600),
            externalTrafficPolicy: .local,
            internalTrafficPolicy: .local,
            ipFamilies: [.inet, .inet6],
            loadBalancerIngress: [.init(ip: ip("203.0.113.7")), .init(ip: ip("203.0.113.8"), ipMode: .proxy)])])
    }

    @Test func defaults() throws {
        let state = try ManifestLoader.parse("""
            apiVersion: v1
            kind: Service
            metadata: {name: web}
            spec:
              clusterIP: 10.96.0.10
              sessionAffinity: ClientIP
              ports: [{port: 80, nodePort: 0}]
            """, source: "web.yaml")
        let service = try #require(state.services.first)
        #expect(service.metadata.namespace == "default")
        #expect(service.type == .clusterIP)
        #expect(service.clusterIPs == [ip("10.96.0.10")])
        #expect(service.ports == [Service.Port(name: "", protocol: .tcp, port: 80, targetPort: .number(80), nodePort: nil)])
        #expect(service.sessionAffinity == .clientIP(timeoutSeconds: 10800))
        #expect(service.externalTrafficPolicy == .cluster)
        #expect(service.internalTrafficPolicy == .cluster)
        #expect(service.ipFamilies == [.inet])
    }

    @Test func headlessAndExternalName() throws {
        let state = try ManifestLoader.parse("""
            apiVersion: v1
            kind: Service
            metadata: {name: db}
            spec: {clusterIP: None, ports: [{port: 5432}]}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: ext}
            spec: {type: ExternalName, externalName: db.example.com}
            """, source: "s.yaml")
        #expect(state.services.map(\.isHeadless) == [true, false])
        #expect(state.services.map(\.clusterIPs) == [[], []])
        #expect(state.services.map(\.type) == [.clusterIP, .externalName])
    }

    @Test func endpointSlice() throws {
        let state = try ManifestLoader.parse("""
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata:
              name: web-abc12
              namespace: shop
              labels:
                kubernetes.io/service-name: web
                endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io
            addressType: IPv4
            endpoints:
            - addresses: [10.244.0.5]
              conditions: {ready: true, serving: true, terminating: false}
              nodeName: node-a
              targetRef: {kind: Pod, name: web-0}
            - addresses: [10.244.1.6]
              conditions: {ready: false, serving: true, terminating: true}
            - addresses: [10.244.2.7]
              conditions: {}
            ports:
            - name: http
              port: 8080
              protocol: TCP
            - name: null
              port: 9090
            - name: all
            """, source: "slices.yaml")
        #expect(state.endpointSlices == [EndpointSlice(
            metadata: ObjectMeta(name: "web-abc12", namespace: "shop", labels: [
                "kubernetes.io/service-name": "web",
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"]),
            addressType: .ipv4,
            endpoints: [EndpointSlice.Endpoint(addresses: [ip("10.244.0.5")], nodeName: "node-a", podName: "web-0"),
                        endpoint("10.244.1.6", .servingTerminating),
                        endpoint("10.244.2.7", .ready)],
            ports: [EndpointSlice.Port(name: "http", port: 8080), EndpointSlice.Port(name: "", port: 9090),
                    EndpointSlice.Port(name: "all", port: nil)])])
        #expect(state.endpointSlices.first?.serviceName == "web")
    }

    @Test func fqdnSlicesCarryNoEndpoints() throws {
        let state = try ManifestLoader.parse("""
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata: {name: ext, labels: {kubernetes.io/service-name: ext}}
            addressType: FQDN
            endpoints: [{addresses: [db.example.com]}]
            """, source: "s.yaml")
        #expect(state.endpointSlices.map(\.endpoints) == [[]])
    }

    @Test func multiDocumentWithOtherKindsAndEmptyDocuments() throws {
        let state = try ManifestLoader.parse("""
            ---
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: settings}
            data: {a: b}
            ---
            # only a comment
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: web}
            spec: {clusterIP: 10.96.0.10, ports: [{port: 80}]}
            ---
            apiVersion: serving.knative.dev/v1
            kind: Service
            metadata: {name: knative}
            spec: {template: {}}
            ---
            apiVersion: v1
            kind: Endpoints
            metadata: {name: web}
            ---
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata: {name: web-1, labels: {kubernetes.io/service-name: web}}
            addressType: IPv4
            endpoints: [{addresses: [10.244.0.5]}]
            ports: [{port: 8080}]
            ...
            """, source: "all.yaml")
        #expect(state.services.map(\.metadata.name) == ["web"])
        #expect(state.endpointSlices.map(\.metadata.name) == ["web-1"])
    }

    @Test func kubectlList() throws {
        let state = try ManifestLoader.parse("""
            apiVersion: v1
            items:
            - apiVersion: v1
              kind: Service
              metadata:
                name: kubernetes
                namespace: default
                resourceVersion: "199"
              spec:
                clusterIP: 10.96.0.1
                clusterIPs:
                - 10.96.0.1
                internalTrafficPolicy: Cluster
                ipFamilies:
                - IPv4
                ipFamilyPolicy: SingleStack
                ports:
                - name: https
                  port: 443
                  protocol: TCP
                  targetPort: 6443
                sessionAffinity: None
                type: ClusterIP
              status:
                loadBalancer: {}
            - apiVersion: discovery.k8s.io/v1
              kind: EndpointSlice
              metadata:
                labels:
                  kubernetes.io/service-name: kubernetes
                name: kubernetes
                namespace: default
              addressType: IPv4
              endpoints:
              - addresses:
                - 172.18.0.2
                conditions:
                  ready: true
              ports:
              - name: https
                port: 6443
                protocol: TCP
            - apiVersion: v1
              kind: ServiceList
              items:
              - apiVersion: v1
                kind: Service
                metadata: {name: nested, namespace: kube-system}
                spec: {clusterIP: 10.96.0.10, ports: [{port: 53, protocol: UDP}]}
            kind: List
            metadata:
              resourceVersion: ""
            """, source: "dump.yaml")
        #expect(state.services.map(\.metadata.qualifiedName) == ["default/kubernetes", "kube-system/nested"])
        #expect(state.endpointSlices.map(\.metadata.qualifiedName) == ["default/kubernetes"])
        let desired = DesiredState(state, node: nodeA)
        #expect(desired.summary["TCP 10.96.0.1:443"] == ["172.18.0.2:6443"])
    }

    @Test func json() throws {
        let state = try ManifestLoader.parse("""
            {
            \t"apiVersion": "v1",
            \t"kind": "List",
            \t"items": [
            \t\t{
            \t\t\t"apiVersion": "v1", "kind": "Service",
            \t\t\t"metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            \t\t\t"spec": {"clusterIPs": ["10.96.0.10"], "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
            \t\t\t         "sessionAffinity": "None", "unknown": {"x": [1, 2.5, null, true]}}
            \t\t},
            \t\t{
            \t\t\t"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            \t\t\t"metadata": {"name": "web-1", "labels": {"kubernetes.io/service-name": "web"}},
            \t\t\t"addressType": "IPv6",
            \t\t\t"endpoints": [{"addresses": ["fd00::5"], "conditions": {"ready": false, "serving": true, "terminating": true}}],
            \t\t\t"ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
            \t\t}
            \t]
            }
            """, source: "dump.json")
        #expect(state.services.map(\.ports) == [[Service.Port(name: "http", port: 80, targetPort: .number(8080))]])
        #expect(state.endpointSlices.first?.endpoints == [endpoint("fd00::5", .servingTerminating)])
    }

    @Test func objectsForAnotherProxyAreSkippedUnvalidated() throws {
        let state = try ManifestLoader.parse("""
            apiVersion: v1
            kind: Service
            metadata:
              name: other
              labels: {service.kubernetes.io/service-proxy-name: cilium}
            spec: {clusterIP: not-an-ip}
            ---
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata:
              name: db-1
              labels: {kubernetes.io/service-name: db, service.kubernetes.io/headless: ""}
            addressType: IPv4
            """, source: "s.yaml")
        #expect(state == ClusterState())
    }

    static let invalid: [(String, String)] = [
        ("spec: {clusterIP: 10.96.0.300}",
         "web.yaml: Service default/web: spec.clusterIP: invalid IP address \"10.96.0.300\""),
        ("spec: {clusterIPs: [10.96.0.10, bogus]}",
         "web.yaml: Service default/web: spec.clusterIPs[1]: invalid IP address \"bogus\""),
        ("spec: {clusterIP: 10.96.0.10, ports: [{port: 70000}]}",
         "web.yaml: Service default/web: spec.ports[0].port: 70000 is out of range 1-65535"),
        ("spec: {clusterIP: 10.96.0.10, ports: [{port: 0}]}",
         "web.yaml: Service default/web: spec.ports[0].port: 0 is out of range 1-65535"),
        ("spec: {ports: [{port: \"80\"}]}",
         "web.yaml: Service default/web: spec.ports[0].port: expected an integer, got \"80\""),
        ("spec: {ports: [{name: a}]}",
         "web.yaml: Service default/web: spec.ports[0].port: missing"),
        ("spec: {ports: [{port: 80, protocol: ICMP}]}",
         "web.yaml: Service default/web: spec.ports[0].protocol: unknown protocol \"ICMP\" (expected TCP, UDP or SCTP)"),
        ("spec: {ports: [{port: 80, protocol: tcp}]}",
         "web.yaml: Service default/web: spec.ports[0].protocol: unknown protocol \"tcp\" (expected TCP, UDP or SCTP)"),
        ("spec: {ports: [{port: 80, targetPort: 0}]}",
         "web.yaml: Service default/web: spec.ports[0].targetPort: 0 is out of range 1-65535"),
        ("spec: {ports: [{port: 80, nodePort: 99999}]}",
         "web.yaml: Service default/web: spec.ports[0].nodePort: 99999 is out of range 1-65535"),
        ("spec: {type: Ingress}",
         "web.yaml: Service default/web: spec.type: unknown value \"Ingress\" (expected one of ClusterIP, NodePort, LoadBalancer, ExternalName)"),
        ("spec: {externalIPs: [198.51.100.4/32]}",
         "web.yaml: Service default/web: spec.externalIPs[0]: invalid IP address \"198.51.100.4/32\""),
        ("spec: {externalTrafficPolicy: Global}",
         "web.yaml: Service default/web: spec.externalTrafficPolicy: unknown value \"Global\" (expected one of Cluster, Local)"),
        ("spec: {sessionAffinity: ClientIP, sessionAffinityConfig: {clientIP: {timeoutSeconds: 86401}}}",
         "web.yaml: Service default/web: spec.sessionAffinityConfig.clientIP.timeoutSeconds: 86401 is out of range 1-86400"),
        ("spec: {ipFamilies: [IPv5]}",
         "web.yaml: Service default/web: spec.ipFamilies[0]: unknown value \"IPv5\" (expected one of IPv4, IPv6)"),
        ("spec: {ports: {port: 80}}",
         "web.yaml: Service default/web: spec.ports: expected a list"),
        ("status: {loadBalancer: {ingress: [{ip: lb.example.com}]}}",
         "web.yaml: Service default/web: status.loadBalancer.ingress[0].ip: invalid IP address \"lb.example.com\""),
    ]

    @Test(arguments: invalid)
    func invalidService(_ spec: String, _ message: String) {
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n\(spec)\n"
        #expect(loadError(text, source: "web.yaml")?.description == message)
    }

    static let invalidSlices: [(String, String)] = [
        ("endpoints: [{addresses: [10.244.0.5]}]",
         "s.yaml: EndpointSlice default/web-1: addressType: missing"),
        ("addressType: IPv4\nendpoints: [{addresses: [\"fd00::5\"]}]",
         "s.yaml: EndpointSlice default/web-1: endpoints[0].addresses[0]: fd00::5 does not match addressType IPv4"),
        ("addressType: IPv4\nendpoints: [{addresses: []}]",
         "s.yaml: EndpointSlice default/web-1: endpoints[0].addresses: empty"),
        ("addressType: IPv4\nendpoints: [{addresses: [10.244.0.5], conditions: {ready: maybe}}]",
         "s.yaml: EndpointSlice default/web-1: endpoints[0].conditions.ready: expected true or false, got maybe"),
        ("addressType: IPv4\nports: [{port: 8080, protocol: QUIC}]",
         "s.yaml: EndpointSlice default/web-1: ports[0].protocol: unknown protocol \"QUIC\" (expected TCP, UDP or SCTP)"),
        ("addressType: IPv4\nports: [{port: -1}]",
         "s.yaml: EndpointSlice default/web-1: ports[0].port: -1 is out of range 1-65535"),
    ]

    @Test(arguments: invalidSlices)
    func invalidSlice(_ body: String, _ message: String) {
        let text = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: web-1}\n\(body)\n"
        #expect(loadError(text, source: "s.yaml")?.description == message)
    }

    static let invalidDocuments: [(String, String)] = [
        ("apiVersion: v1\nkind: Service\nmetadata: {namespace: shop}\n",
         "x.yaml: Service at line 1: metadata.name: missing"),
        ("apiVersion: v1\nkind: Service\nspec: {}\n",
         "x.yaml: Service at line 1: metadata: missing"),
        ("apiVersion: v1\nkind: Service\nmetadata: {name: \"\"}\n",
         "x.yaml: Service at line 1: metadata.name: empty"),
        ("apiVersion: v1\nmetadata: {name: web}\n",
         "x.yaml: line 1: kind: missing"),
        ("apiVersion: v1\nkind: [Service]\n",
         "x.yaml: line 1: kind: expected a string"),
        ("apiVersion: {v: 1}\nkind: Service\n",
         "x.yaml: line 1: apiVersion: expected a string"),
        ("- just\n- a list\n",
         "x.yaml: line 1: expected an object with apiVersion and kind"),
        ("kind: List\nitems: {a: b}\n",
         "x.yaml: List at line 1: items: expected a list"),
    ]

    @Test(arguments: invalidDocuments)
    func invalidDocument(_ text: String, _ message: String) {
        #expect(loadError(text, source: "x.yaml")?.description == message)
    }

    @Test func yamlSyntaxErrorNamesTheSource() {
        let error = loadError("kind: Service\nmetadata: {name: web\n", source: "broken.yaml")
        #expect(error?.problems.count == 1)
        #expect(error?.description.hasPrefix("broken.yaml: invalid YAML or JSON: ") == true)
    }

    @Test func everyProblemIsReported() {
        let error = loadError("""
                apiVersion: v1
                kind: Service
                metadata: {name: a}
                spec: {clusterIP: bad}
                ---
                apiVersion: v1
                kind: Service
                metadata: {name: ok}
                ---
                apiVersion: v1
                kind: Service
                metadata: {name: b, namespace: x}
                spec: {ports: [{port: 0}]}
                """, source: "m.yaml")
        #expect(error?.problems.map(\.object) == ["Service default/a", "Service x/b"])
    }

    @Test func duplicateObjects() {
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
        #expect(loadError(text, source: "d.yaml")?.description == "d.yaml: Service default/web: defined twice")
    }
}

@Suite struct ManifestFileTests {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("kipvs-loader-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    func write(_ name: String, _ text: String) throws {
        try text.write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8)
    }

    static let service = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {clusterIP: 10.96.0.10, ports: [{port: 80}]}\n"
    static let slice = """
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata: {name: web-1, labels: {kubernetes.io/service-name: web}}
        addressType: IPv4
        endpoints: [{addresses: [10.244.0.5]}]
        ports: [{port: 8080}]
        """

    @Test func directoryIsTheUnionOfItsManifests() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        try write("b-slice.json", #"{"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "web-2", "labels": {"kubernetes.io/service-name": "web"}}, "addressType": "IPv4"}"#)
        try write("a-service.yaml", Self.service)
        try write("c-slice.yml", Self.slice)
        try write("notes.txt", "not a manifest")
        try write(".hidden.yaml", "garbage: [")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("..data"),
                                                withIntermediateDirectories: true)
        let state = try ManifestLoader.load(paths: [directory.path])
        #expect(state.services.map(\.metadata.name) == ["web"])
        #expect(state.endpointSlices.map(\.metadata.name) == ["web-2", "web-1"])
    }

    @Test func oneBadFileFailsTheWholeLoad() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        try write("a-service.yaml", Self.service)
        try write("b-bad.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: db}\nspec: {clusterIP: 10.96.0.300}\n")
        let bad = directory.appendingPathComponent("b-bad.yaml").path
        #expect(loadError(paths: [directory.path])?.description
            == "\(bad): Service default/db: spec.clusterIP: invalid IP address \"10.96.0.300\"")
    }

    @Test func sameObjectInTwoFiles() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        try write("a.yaml", Self.service)
        try write("b.yaml", Self.service)
        let a = directory.appendingPathComponent("a.yaml").path
        let b = directory.appendingPathComponent("b.yaml").path
        #expect(loadError(paths: [a, b])?.description == "\(b): Service default/web: also defined in \(a)")
    }

    @Test func missingPath() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("nope.yaml").path
        #expect(loadError(paths: [path])?.description == "\(path): no such file or directory")
    }

    @Test func emptyDirectoryIsAnEmptyState() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(try ManifestLoader.load(paths: [directory.path]) == ClusterState())
    }
}
