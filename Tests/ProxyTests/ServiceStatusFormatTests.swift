import IPVS
import Testing
@testable import Proxy

@Suite struct ServiceStatusFormatTests {
    /// web: a NodePort Service with a ready pod, a pod shutting down and one already gone from its
    /// slice; dns: ClientIP affinity over UDP, both pods ready.
    static let cluster = ClusterState(
        services: [
            service("web", type: .nodePort, ports: [Service.Port(name: "http", port: 80, targetPort: .number(8080), nodePort: 30080)]),
            service("dns", namespace: "kube-system", clusterIPs: ["10.96.0.53"],
                    ports: [Service.Port(name: "dns", protocol: .udp, port: 53)], affinity: .clientIP(timeoutSeconds: 10800),
                    internalPolicy: .local),
        ],
        endpointSlices: [
            slice("web-x1", service: "web", ports: [EndpointSlice.Port(name: "http", port: 8080)], endpoints: [
                endpoint("10.244.1.2", node: "node-a"),
                endpoint("10.244.2.2", .servingTerminating, node: "node-b"),
                endpoint("10.244.3.2", .notReady, node: "node-b"),
            ]),
            slice("dns-x1", service: "dns", namespace: "kube-system", ports: [EndpointSlice.Port(name: "dns", port: 53, protocol: .udp)],
                  endpoints: [endpoint("10.244.1.3", node: "node-a"), endpoint("10.244.2.3", node: "node-b")]),
        ])

    static func virtual(_ key: VirtualServerKey, _ scheduler: String = "rr", persistent: UInt32? = nil) -> VirtualServerStatus {
        VirtualServerStatus(server: VirtualServer(key: key, scheduler: scheduler, flags: persistent == nil ? [] : .persistent,
                                                  timeout: persistent ?? 0))
    }

    static func realStatus(_ address: String, _ port: UInt16, weight: Int32 = 1, active: UInt32 = 0,
                           inactive: UInt32 = 0) -> RealServerStatus {
        RealServerStatus(server: real(address, port, weight: weight), activeConnections: active, inactiveConnections: inactive)
    }

    static func render(_ table: [(VirtualServerStatus, [RealServerStatus])], bound: Set<IPAddress> = []) -> String {
        let desired = DesiredState(cluster, node: nodeA)
        let ownership = Ownership(node: nodeA, desired: desired, boundAddresses: bound)
        return ServiceStatusFormat.render(cluster: cluster, desired: desired, ownership: ownership, nodeName: nodeA.nodeName,
                                          table: table)
    }

    @Test func everyStateOnOnePage() {
        let table: [(VirtualServerStatus, [RealServerStatus])] = [
            (Self.virtual(.service(.udp, ip("10.0.0.1"), 53), "wlc"), [Self.realStatus("10.1.0.1", 53, weight: 3)]),
            (Self.virtual(tcp("10.96.0.10", 80)), [
                Self.realStatus("10.244.4.2", 8080, weight: 0, active: 1, inactive: 2),
                Self.realStatus("10.244.2.2", 8080, weight: 0, active: 4),
                Self.realStatus("10.244.1.2", 8080, active: 12, inactive: 30),
            ]),
            (Self.virtual(tcp("192.168.1.10", 30080)), [Self.realStatus("10.244.1.2", 8080, weight: 0)]),
            (Self.virtual(udp("10.96.0.53", 53), persistent: 10800), [Self.realStatus("10.244.1.3", 53)]),
            (Self.virtual(tcp("10.96.0.99", 443)), [Self.realStatus("10.244.9.9", 8443, inactive: 1)]),
        ]
        #expect(Self.render(table, bound: [ip("10.96.0.10"), ip("10.96.0.53"), ip("10.96.0.99")]) == """
            Service port  Type, traffic policies, affinity
              Prot VirtualAddress:Port  Scheduler            Role
                -> RemoteAddress:Port  Weight  State                             Node    ActiveConn  InActConn
            default/web:http  NodePort, external Cluster, internal Cluster
              TCP  10.96.0.10:80        rr                   cluster IP
                -> 10.244.1.2:8080     1       ready                             node-a  12          30
                -> 10.244.2.2:8080     0       serving, terminating, draining    node-b  4           0
                -> 10.244.4.2:8080     0       removed, draining                 -       1           2
              TCP  192.168.1.10:30080   rr                   node port
                -> 10.244.1.2:8080     0       ready, weight 1 at the next sync  node-a  0           0
            kube-system/dns:dns  ClusterIP, external Cluster, internal Local, affinity ClientIP 10800s
              UDP  10.96.0.53:53        rr persistent 10800  cluster IP
                -> 10.244.1.3:53       1       ready                             node-a  0           0
            (no Service)
              TCP  10.96.0.99:443       rr                   stale: kipvs deletes it at the next sync
                -> 10.244.9.9:8443     1       -                                 -       0           1
              UDP  10.0.0.1:53          wlc                  foreign: kipvs leaves it alone
                -> 10.1.0.1:53         3       -                                 -       0           0
            2 Service ports, 3 virtual servers, 7 real servers (2 draining); without a Service: 1 stale, 1 foreign

            """)
    }

    /// Before the first sync: every virtual and real server the Services want, none in the kernel.
    @Test func nothingSyncedYet() {
        let out = Self.render([])
        #expect(out == """
            Service port  Type, traffic policies, affinity
              Prot VirtualAddress:Port  Scheduler            Role
                -> RemoteAddress:Port  Weight  State  Node    ActiveConn  InActConn
            default/web:http  NodePort, external Cluster, internal Cluster
              TCP  10.96.0.10:80        rr                   cluster IP, not in the kernel yet
                -> 10.244.1.2:8080     -       ready  node-a  0           0
              TCP  192.168.1.10:30080   rr                   node port, not in the kernel yet
                -> 10.244.1.2:8080     -       ready  node-a  0           0
            kube-system/dns:dns  ClusterIP, external Cluster, internal Local, affinity ClientIP 10800s
              UDP  10.96.0.53:53        rr persistent 10800  cluster IP, not in the kernel yet
                -> 10.244.1.3:53       -       ready  node-a  0           0
            2 Service ports, 3 virtual servers (3 not in the kernel yet), 0 real servers; without a Service: 0 stale, 0 foreign

            """)
    }

    /// Every role a virtual server plays for a LoadBalancer Service with the Local policy, and the
    /// warnings of the desired state at the end.
    @Test func rolesAndWarnings() {
        let lb = service("lb", type: .loadBalancer, clusterIPs: ["10.96.0.70"],
                         ports: [Service.Port(port: 443, targetPort: .number(8443), nodePort: 30443)],
                         externalIPs: ["203.0.113.5"], externalPolicy: .local,
                         loadBalancer: [Service.LoadBalancerIngress(ip: ip("198.51.100.7"))])
        let clash = service("clash", clusterIPs: ["10.96.0.70"], ports: [Service.Port(port: 443)])
        let cluster = ClusterState(services: [lb, clash], endpointSlices: [
            slice("lb-x1", service: "lb", ports: [EndpointSlice.Port(port: 8443)],
                  endpoints: [endpoint("10.244.1.5", node: "node-a"), endpoint("10.244.2.5", node: "node-b")]),
        ])
        let desired = DesiredState(cluster, node: nodeA)
        let mark = desired.virtualServers.keys.first { if case .firewallMark = $0 { true } else { false } }
        let out = ServiceStatusFormat.render(cluster: cluster, desired: desired,
                                             ownership: Ownership(node: nodeA, desired: desired, boundAddresses: []),
                                             nodeName: nodeA.nodeName,
                                             table: [(Self.virtual(mark!), [Self.realStatus("10.244.1.5", 8443, active: 1),
                                                                           Self.realStatus("10.244.2.5", 8443)])])
        // The mark is a hash of the Service port's name, the same on every node.
        #expect(out == """
            Service port  Type, traffic policies, affinity
              Prot VirtualAddress:Port  Scheduler  Role
                -> RemoteAddress:Port  Weight  State  Node    ActiveConn  InActConn
            default/clash  ClusterIP, external Cluster, internal Cluster
              TCP  10.96.0.70:443       rr         cluster IP, not in the kernel yet
            default/lb  LoadBalancer, external Local, internal Cluster
              TCP  192.168.1.10:30443   rr         node port, not in the kernel yet
                -> 10.244.1.5:8443     -       ready  node-a  0           0
              TCP  198.51.100.7:443     rr         load balancer, not in the kernel yet
                -> 10.244.1.5:8443     -       ready  node-a  0           0
              TCP  203.0.113.5:443      rr         external IP, not in the kernel yet
                -> 10.244.1.5:8443     -       ready  node-a  0           0
              FWM  184588357            rr         in-cluster clients (Local policy)
                -> 10.244.1.5:8443     1       ready  node-a  1           0
                -> 10.244.2.5:8443     1       ready  node-b  0           0
            2 Service ports, 5 virtual servers (4 not in the kernel yet), 2 real servers; without a Service: 0 stale, 0 foreign
            warning: Service default/lb: TCP 10.96.0.70:443 is already used by default/clash; ignored for default/lb

            """)
    }
}
