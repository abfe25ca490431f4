import Foundation
import NIOSSL
import Testing
@testable import KubernetesSource

/// A throwaway self-signed certificate and key (P-256), for TLS configuration tests only.
enum TestPKI {
    static let certificate = """
-----BEGIN CERTIFICATE-----
MIIBgTCCASegAwIBAgIUaQRRZlc4xGY3JeOBNd2PzVz6TfowCgYIKoZIzj0EAwIw
FTETMBEGA1UEAwwKa2lwdnMtdGVzdDAgFw0yNjExMjIyMjU0MjdaGA8yMTI2MTAy
OTIyNTQyN1owFTETMBEGA1UEAwwKa2lwdnMtdGVzdDBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABOtDbo2KUBghW+yx2rn0zGWhDOB0u7jl2/JTqhVUGSaf3G6Vv+xy
iHMk+WL9rny5yjhND+eFYWINOl7wecVrBBujUzBRMB0GA1UdDgQWBBQQnetfaUc/
Df72xyg1Zp7szLN5GzAfBgNVHSMEGDAWgBQQnetfaUc/Df72xyg1Zp7szLN5GzAP
BgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIAbnXSErmibUzqATKsLV
nETzwJ/c08vEB23UsynB3jdlAiEAxcMX2itgo6BYEzC9hbheX01i1Zn7JSK7FHJB
Fbv6Rv8=
-----END CERTIFICATE-----
"""
    static let key = """
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgUZG0Y5BeZ7ysT+GU
40R2HGwce5xkOLfCMvBG30T5HG2hRANCAATrQ26NilAYIVvssdq59MxloQzgdLu4
5dvyU6oVVBkmn9xulb/scohzJPli/a58uco4TQ/nhWFiDTpe8HnFawQb
-----END PRIVATE KEY-----
"""
    static var certificateData: String { Data(certificate.utf8).base64EncodedString() }
    static var keyData: String { Data(key.utf8).base64EncodedString() }
}

/// A scratch directory, removed when the test ends.
func withTemporaryDirectory<T>(_ body: (String) throws -> T) throws -> T {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("kipvs-test-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}

@Suite struct KubeconfigTests {
    static let twoContexts = """
        apiVersion: v1
        kind: Config
        current-context: prod
        clusters:
        - name: prod-cluster
          cluster:
            server: https://10.0.0.1:6443
            certificate-authority-data: \(TestPKI.certificateData)
        - name: lab-cluster
          cluster:
            server: https://lab.example:6443
            insecure-skip-tls-verify: true
        users:
        - name: prod-admin
          user:
            client-certificate-data: \(TestPKI.certificateData)
            client-key-data: \(TestPKI.keyData)
        - name: lab-user
          user:
            token: abc.def
        contexts:
        - name: prod
          context: {cluster: prod-cluster, user: prod-admin}
        - name: lab
          context: {cluster: lab-cluster, user: lab-user, namespace: kube-system}
        """

    @Test func currentContextWithClientCertificateAndCAData() throws {
        let connection = try ClusterConnection(try Kubeconfig.parse(Self.twoContexts), directory: "/")
        #expect(connection.server == "https://10.0.0.1:6443")
        #expect(connection.certificateAuthority == Array(TestPKI.certificate.utf8))
        #expect(connection.clientCertificate == .init(certificateChain: Array(TestPKI.certificate.utf8),
                                                      privateKey: Array(TestPKI.key.utf8)))
        #expect(!connection.insecureSkipTLSVerify)
        #expect(try connection.authorization() == nil)
        // The PEM data is usable by the TLS layer.
        _ = try connection.tlsConfiguration()
    }

    @Test func namedContextWithTokenAndInsecureFlag() throws {
        let connection = try ClusterConnection(try Kubeconfig.parse(Self.twoContexts), context: "lab", directory: "/")
        #expect(connection.server == "https://lab.example:6443")
        #expect(connection.insecureSkipTLSVerify)
        #expect(connection.certificateAuthority == nil)
        #expect(try connection.authorization() == "Bearer abc.def")
        #expect(try connection.tlsConfiguration().certificateVerification == .none)
    }

    @Test func verificationStaysOnUnlessAskedOff() throws {
        let connection = try ClusterConnection(try Kubeconfig.parse(Self.twoContexts), context: "prod", directory: "/")
        #expect(try connection.tlsConfiguration().certificateVerification == .fullVerification)
    }

    @Test func unknownContextIsAnError() throws {
        #expect(throws: ConnectionError.self) {
            try ClusterConnection(try Kubeconfig.parse(Self.twoContexts), context: "staging", directory: "/")
        }
    }

    @Test func credentialPluginsAreRefused() throws {
        let text = """
            current-context: eks
            clusters: [{name: c, cluster: {server: "https://example:443"}}]
            users:
            - name: u
              user:
                exec:
                  apiVersion: client.authentication.k8s.io/v1beta1
                  command: aws
                  args: [eks, get-token]
            contexts: [{name: eks, context: {cluster: c, user: u}}]
            """
        let error = #expect(throws: ConnectionError.self) {
            try ClusterConnection(try Kubeconfig.parse(text), directory: "/")
        }
        #expect(error?.description.contains("not supported") == true)
    }

    @Test func filesAreRelativeToTheKubeconfig() throws {
        try withTemporaryDirectory { directory in
            try TestPKI.certificate.write(toFile: "\(directory)/ca.crt", atomically: true, encoding: .utf8)
            try TestPKI.certificate.write(toFile: "\(directory)/client.crt", atomically: true, encoding: .utf8)
            try TestPKI.key.write(toFile: "\(directory)/client.key", atomically: true, encoding: .utf8)
            try "file-token\n".write(toFile: "\(directory)/token", atomically: true, encoding: .utf8)
            let config = """
                current-context: files
                clusters: [{name: c, cluster: {server: "https://example:443", certificate-authority: ca.crt}}]
                users:
                - {name: certs, user: {client-certificate: client.crt, client-key: client.key}}
                - {name: tokens, user: {tokenFile: token}}
                contexts:
                - {name: files, context: {cluster: c, user: certs}}
                - {name: token-file, context: {cluster: c, user: tokens}}
                """
            try config.write(toFile: "\(directory)/config", atomically: true, encoding: .utf8)
            let certs = try ClusterConnection.kubeconfig(path: "\(directory)/config")
            #expect(certs.certificateAuthority == Array(TestPKI.certificate.utf8))
            #expect(certs.clientCertificate?.privateKey == Array(TestPKI.key.utf8))
            let token = try ClusterConnection.kubeconfig(path: "\(directory)/config", context: "token-file")
            #expect(try token.authorization() == "Bearer file-token")
        }
    }

    @Test func aCertificateWithoutItsKeyIsAnError() throws {
        let text = """
            current-context: x
            clusters: [{name: c, cluster: {server: "https://example:443"}}]
            users: [{name: u, user: {client-certificate-data: \(TestPKI.certificateData)}}]
            contexts: [{name: x, context: {cluster: c, user: u}}]
            """
        #expect(throws: ConnectionError.self) { try ClusterConnection(try Kubeconfig.parse(text), directory: "/") }
    }

    @Test func basicAuthentication() throws {
        let text = """
            current-context: x
            clusters: [{name: c, cluster: {server: "http://127.0.0.1:8080"}}]
            users: [{name: u, user: {username: admin, password: secret}}]
            contexts: [{name: x, context: {cluster: c, user: u}}]
            """
        let connection = try ClusterConnection(try Kubeconfig.parse(text), directory: "/")
        #expect(try connection.authorization() == "Basic YWRtaW46c2VjcmV0")
    }
}

@Suite struct InClusterTests {
    @Test func serviceHostPortTokenAndCA() throws {
        try withTemporaryDirectory { directory in
            try "token-1".write(toFile: "\(directory)/token", atomically: true, encoding: .utf8)
            try TestPKI.certificate.write(toFile: "\(directory)/ca.crt", atomically: true, encoding: .utf8)
            let connection = try ClusterConnection.inCluster(
                environment: ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"], directory: directory)
            #expect(connection.server == "https://10.96.0.1:443")
            #expect(connection.certificateAuthority == Array(TestPKI.certificate.utf8))
            #expect(try connection.authorization() == "Bearer token-1")

            // A rotated token is picked up on the next request.
            try "token-2-longer".write(toFile: "\(directory)/token", atomically: true, encoding: .utf8)
            #expect(try connection.authorization() == "Bearer token-2-longer")
        }
    }

    @Test func ipv6ServiceHostIsBracketed() throws {
        try withTemporaryDirectory { directory in
            try "t".write(toFile: "\(directory)/token", atomically: true, encoding: .utf8)
            try TestPKI.certificate.write(toFile: "\(directory)/ca.crt", atomically: true, encoding: .utf8)
            let connection = try ClusterConnection.inCluster(
                environment: ["KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"], directory: directory)
            #expect(connection.server == "https://[fd00::1]:443")
        }
    }

    @Test func outsideAPodIsAnError() {
        #expect(throws: ConnectionError.self) { try ClusterConnection.inCluster(environment: [:]) }
    }
}
