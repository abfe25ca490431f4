import Foundation

/// How to reach and authenticate to an API server: from in-cluster settings or a kubeconfig.
public struct ClusterConnection: Sendable {
    /// `https://10.96.0.1:443`; may carry a path prefix, which requests keep.
    public var server: String
    public var credentials: Credentials
    /// PEM certificates to trust instead of the system's.
    public var certificateAuthority: [UInt8]?
    /// PEM certificate chain and key presented to the server.
    public var clientCertificate: ClientCertificate?
    /// Skips verification of the server's certificate; only when the configuration says so.
    public var insecureSkipTLSVerify: Bool

    public enum Credentials: Sendable {
        case none
        case bearer(BearerToken)
        case basic(username: String, password: String)
    }

    public struct ClientCertificate: Sendable, Equatable {
        public var certificateChain: [UInt8]
        public var privateKey: [UInt8]

        public init(certificateChain: [UInt8], privateKey: [UInt8]) {
            self.certificateChain = certificateChain
            self.privateKey = privateKey
        }
    }

    public init(server: String, credentials: Credentials = .none, certificateAuthority: [UInt8]? = nil,
                clientCertificate: ClientCertificate? = nil, insecureSkipTLSVerify: Bool = false) {
        self.server = server
        self.credentials = credentials
        self.certificateAuthority = certificateAuthority
        self.clientCertificate = clientCertificate
        self.insecureSkipTLSVerify = insecureSkipTLSVerify
    }

    /// The `Authorization` header value, read afresh (a token file may have been rotated).
    func authorization() throws -> String? {
        switch credentials {
        case .none: nil
        case .bearer(let token): "Bearer \(try token.current())"
        case .basic(let username, let password): "Basic \(Data("\(username):\(password)".utf8).base64EncodedString())"
        }
    }
}

/// Why a connection could not be configured.
public struct ConnectionError: Error, CustomStringConvertible, Sendable {
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}
