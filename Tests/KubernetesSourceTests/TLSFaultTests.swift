import KubeAPIServer
import MetricsTestKit
import NIOCore
import NIOSSL
import Proxy
import Testing
@testable import KubernetesSource

/// A cluster CA, an API server certificate it signed (for 127.0.0.1 and localhost), and a CA that
/// signed nothing here: throwaway P-256 keys, valid from 2000 to 2100, for TLS tests only.
enum ClusterPKI {
    static let clusterCA = """
-----BEGIN CERTIFICATE-----
MIIBdDCCARqgAwIBAgICEAAwCgYIKoZIzj0EAwIwIDEeMBwGA1UEAwwVa2lwdnMt
dGVzdC1jbHVzdGVyLWNhMCAXDTAwMDEwMTAwMDAwMFoYDzIxMDAwMTAxMDAwMDAw
WjAgMR4wHAYDVQQDDBVraXB2cy10ZXN0LWNsdXN0ZXItY2EwWTATBgcqhkjOPQIB
BggqhkjOPQMBBwNCAAQMHBo+1k8DykrKvut9588cjApVgN9afJI8PFi2sEKoknqJ
7oJ6/kMXZom0oJ8o/aaKgNsqdmWxt1+6jjevWlUFo0IwQDAPBgNVHRMBAf8EBTAD
AQH/MA4GA1UdDwEB/wQEAwIBBjAdBgNVHQ4EFgQUOLQFVZpeAyQ1Yu3fiBnb03cm
0DAwCgYIKoZIzj0EAwIDSAAwRQIhAISQaXjpoUAc4ateZhuGkbuZug/r8wW3GnUR
pKNxE+xeAiB5h4b2kT1hPZiRxx935EcHWDL6DK5UGX8zTcvwErP/ug==
-----END CERTIFICATE-----
"""
    static let otherCA = """
-----BEGIN CERTIFICATE-----
MIIBcTCCARagAwIBAgICEAEwCgYIKoZIzj0EAwIwHjEcMBoGA1UEAwwTa2lwdnMt
dGVzdC1vdGhlci1jYTAgFw0wMDAxMDEwMDAwMDBaGA8yMTAwMDEwMTAwMDAwMFow
HjEcMBoGA1UEAwwTa2lwdnMtdGVzdC1vdGhlci1jYTBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABKlsFuBFKhVIlKYx4aVme9CNa/QAB6ET/hmiTXQOapa6Ubr+7RWB
Qv4nDSky73RElVu5JkTR9tS5zHgLym4f9pijQjBAMA8GA1UdEwEB/wQFMAMBAf8w
DgYDVR0PAQH/BAQDAgEGMB0GA1UdDgQWBBTqksOJXCgXzU0p+nxJdnEBAxMoATAK
BggqhkjOPQQDAgNJADBGAiEA4+c74AvQJ02u1o2ty5fSBR7aaiOuS8FSlEpSXZ6H
o8UCIQCcvs6pODbNFGkavAxDpEHEJFKOtjIzfLSCODBOjcPv6A==
-----END CERTIFICATE-----
"""
    /// CN kube-apiserver, subjectAltName IP:127.0.0.1 and DNS:localhost, signed by `clusterCA`.
    static let serverCertificate = """
-----BEGIN CERTIFICATE-----
MIIBvjCCAWSgAwIBAgICEAIwCgYIKoZIzj0EAwIwIDEeMBwGA1UEAwwVa2lwdnMt
dGVzdC1jbHVzdGVyLWNhMCAXDTAwMDEwMTAwMDAwMFoYDzIxMDAwMTAxMDAwMDAw
WjAZMRcwFQYDVQQDDA5rdWJlLWFwaXNlcnZlcjBZMBMGByqGSM49AgEGCCqGSM49
AwEHA0IABAyMkLXJTB14oAaA0myU2poFHU/qE3VTimfxrXVETalf5GPbUH0LS6HD
EgKRfFrZNPVOvGdhrf8DqjlPHLXWmwajgZIwgY8wDAYDVR0TAQH/BAIwADAOBgNV
HQ8BAf8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUHAwEwGgYDVR0RBBMwEYcEfwAA
AYIJbG9jYWxob3N0MB8GA1UdIwQYMBaAFDi0BVWaXgMkNWLt34gZ29N3JtAwMB0G
A1UdDgQWBBRtzQKVntGH4gEz9t3S15g+3uOg0jAKBggqhkjOPQQDAgNIADBFAiEA
6A32yvkjKgtuH6Dlr3BNZWuGIhjyuxOS3tckcW2xo2ACIFbg1/POVrg7vuWCmrEZ
l/MdRD35ehpIEykH0E4N2MIk
-----END CERTIFICATE-----
"""
    static let serverKey = """
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg0NF/YD43LJN0BWaS
hU6/CL7Kcv3g6+mLQ8uLsPldfG2hRANCAAQMjJC1yUwdeKAGgNJslNqaBR1P6hN1
U4pn8a11RE2pX+Rj21B9C0uhwxICkXxa2TT1TrxnYa3/A6o5Txy11psG
-----END PRIVATE KEY-----
"""

    /// The test server's connections under TLS, presenting `serverCertificate`.
    static func serverLayer() throws -> ConnectionLayer {
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(serverCertificate.utf8)).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(serverKey.utf8), format: .pem)))
        let context = try NIOSSLContext(configuration: configuration)
        return ConnectionLayer(scheme: "https") { channel in
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
        }
    }
}

extension APIFaultTests {
    /// What makes the next test's refusal mean something: with the cluster's CA, the same server is
    /// trusted, and the source lists and watches through TLS.
    @Test func aServerTheClusterCASignedIsTrusted() async throws {
        try await KubeAPIServer.withServer(layer: try ClusterPKI.serverLayer()) { server in
            server.put(.services, Self.web(port: 80))
            #expect(server.url.hasPrefix("https://127.0.0.1:"))
            let connection = ClusterConnection(server: server.url, certificateAuthority: Array(ClusterPKI.clusterCA.utf8))
            try await withSource(server, connection: connection) { _, tracker in
                try await tracker.waitFor { webPorts($0) == [80] }
                try await tracker.waitUntil { server.openWatches == 2 }
            }
        }
    }

    /// A server whose certificate another CA signed: not one request goes over its connections,
    /// nothing is handed out, every attempt is logged with a TLS error naming the server, and the
    /// attempts are the reflectors' own, paced by their backoff (none retried unseen below them).
    @Test func aServerAnotherCASignedIsNeverTrusted() async throws {
        let logs = LogRecorder()
        let metrics = TestMetrics()
        let settings = Self.pacedSettings
        try await KubeAPIServer.withServer(layer: try ClusterPKI.serverLayer()) { server in
            server.put(.services, Self.web(port: 80))
            let connection = ClusterConnection(server: server.url, certificateAuthority: Array(ClusterPKI.otherCA.utf8))
            let start = ContinuousClock.now
            try await withSource(server, connection: connection, settings: settings, metrics: metrics, logs: logs) { _, tracker in
                func failures(_ resource: String) -> [String] {
                    logs.messages.filter { $0.contains("list failed") && $0.contains("resource=\(resource)") }
                }
                try await tracker.waitUntil { failures("services").count >= 5 && failures("endpointslices").count >= 5 }
                let connections = server.connectionsAccepted
                let elapsed = ContinuousClock.now - start
                // Read after the count: every connection counted has failed and been logged, or is
                // one reflector's attempt still under way.
                let logged = failures("services") + failures("endpointslices")

                #expect(tracker.batches.isEmpty)
                #expect(server.requests.isEmpty)
                let unclear = logged.filter { !($0.contains("at \(server.url): TLS: ") && $0.contains("CERTIFICATE_VERIFY_FAILED")) }
                #expect(unclear.isEmpty, "\(unclear.count) of \(logged.count) failures, such as \(unclear.first ?? "")")
                #expect(connections >= 5)
                #expect(connections <= logged.count + 2)
                #expect(connections <= 2 * Self.mostAttempts(within: elapsed, backoff: settings.backoff),
                        "\(connections) connections in \(elapsed)")
                #expect(metrics.counterTotal(label: "kipvs_watch_restarts_total", dimensions: [("reason", "dropped")]) >= 10)
            }
        }
    }
}
