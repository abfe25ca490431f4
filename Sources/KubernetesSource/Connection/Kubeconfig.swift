import Foundation
import Yams

/// The parts of a kubeconfig file that pick a cluster and a user. Relative file paths in it are
/// relative to the file's directory, as kubectl reads them.
public struct Kubeconfig: Decodable, Sendable {
    public struct Cluster: Decodable, Sendable {
        public var server: String
        public var certificateAuthority: String?
        public var certificateAuthorityData: String?
        public var insecureSkipTLSVerify: Bool?

        enum CodingKeys: String, CodingKey {
            case server
            case certificateAuthority = "certificate-authority"
            case certificateAuthorityData = "certificate-authority-data"
            case insecureSkipTLSVerify = "insecure-skip-tls-verify"
        }
    }

    public struct User: Decodable, Sendable {
        public var token: String?
        public var tokenFile: String?
        public var clientCertificate: String?
        public var clientCertificateData: String?
        public var clientKey: String?
        public var clientKeyData: String?
        public var username: String?
        public var password: String?
        /// Credential plugins, which kipvs does not run.
        var exec: Present?
        var authProvider: Present?

        enum CodingKeys: String, CodingKey {
            case token, tokenFile, username, password, exec
            case clientCertificate = "client-certificate"
            case clientCertificateData = "client-certificate-data"
            case clientKey = "client-key"
            case clientKeyData = "client-key-data"
            case authProvider = "auth-provider"
        }
    }

    public struct Context: Decodable, Sendable {
        public var cluster: String
        public var user: String?
    }

    struct Named<T: Decodable & Sendable>: Decodable, Sendable {
        var name: String
        var value: T

        enum CodingKeys: String, CodingKey { case name, cluster, user, context }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            name = try container.decode(String.self, forKey: .name)
            let key = [CodingKeys.cluster, .user, .context].first { container.contains($0) } ?? .context
            value = try container.decode(T.self, forKey: key)
        }
    }

    /// Any value at all: only its presence matters.
    struct Present: Decodable, Sendable {
        init(from decoder: any Decoder) throws {}
    }

    var clusters: [Named<Cluster>]
    var users: [Named<User>]
    var contexts: [Named<Context>]
    public var currentContext: String?

    enum CodingKeys: String, CodingKey {
        case clusters, users, contexts
        case currentContext = "current-context"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        clusters = try container.decodeIfPresent([Named<Cluster>].self, forKey: .clusters) ?? []
        users = try container.decodeIfPresent([Named<User>].self, forKey: .users) ?? []
        contexts = try container.decodeIfPresent([Named<Context>].self, forKey: .contexts) ?? []
        currentContext = try container.decodeIfPresent(String.self, forKey: .currentContext)
    }

    public static func parse(_ text: String) throws -> Kubeconfig {
        do {
            return try YAMLDecoder().decode(Kubeconfig.self, from: text)
        } catch {
            throw ConnectionError("invalid kubeconfig: \(error)")
        }
    }

    public func cluster(named name: String) -> Cluster? { clusters.first { $0.name == name }?.value }
    public func user(named name: String) -> User? { users.first { $0.name == name }?.value }
    public func context(named name: String) -> Context? { contexts.first { $0.name == name }?.value }
}

extension ClusterConnection {
    /// The connection `context` (default: the current context) of the kubeconfig at `path` describes.
    public static func kubeconfig(path: String, context: String? = nil) throws -> ClusterConnection {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConnectionError("cannot read kubeconfig \(path)")
        }
        let config = try Kubeconfig.parse(String(decoding: data, as: UTF8.self))
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return try ClusterConnection(config, context: context, directory: directory)
    }

    /// The connection a parsed kubeconfig's `context` describes; files are found relative to `directory`.
    public init(_ config: Kubeconfig, context contextName: String? = nil, directory: String) throws {
        guard let name = contextName ?? config.currentContext, !name.isEmpty else {
            throw ConnectionError("kubeconfig has no current-context; pass --context")
        }
        guard let context = config.context(named: name) else { throw ConnectionError("kubeconfig has no context \(name)") }
        guard let cluster = config.cluster(named: context.cluster) else {
            throw ConnectionError("context \(name) names the missing cluster \(context.cluster)")
        }
        var user = Kubeconfig.User()
        if let userName = context.user, !userName.isEmpty {
            guard let found = config.user(named: userName) else {
                throw ConnectionError("context \(name) names the missing user \(userName)")
            }
            user = found
        }
        if user.exec != nil || user.authProvider != nil {
            throw ConnectionError("user of context \(name): credential plugins (exec, auth-provider) are not supported; "
                                  + "use a token or a client certificate")
        }
        let files = RelativeFiles(directory: directory)

        var credentials = Credentials.none
        if let token = user.token, !token.isEmpty {
            credentials = .bearer(BearerToken(token))
        } else if let tokenFile = user.tokenFile, !tokenFile.isEmpty {
            credentials = .bearer(BearerToken(file: files.path(tokenFile)))
        } else if let username = user.username, !username.isEmpty {
            credentials = .basic(username: username, password: user.password ?? "")
        }

        var clientCertificate: ClientCertificate?
        let certificate = try files.contents(data: user.clientCertificateData, file: user.clientCertificate,
                                             what: "client-certificate")
        let key = try files.contents(data: user.clientKeyData, file: user.clientKey, what: "client-key")
        switch (certificate, key) {
        case (let certificate?, let key?): clientCertificate = ClientCertificate(certificateChain: certificate, privateKey: key)
        case (nil, nil): break
        default: throw ConnectionError("user of context \(name): a client certificate needs both certificate and key")
        }

        self.init(
            server: cluster.server,
            credentials: credentials,
            certificateAuthority: try files.contents(data: cluster.certificateAuthorityData, file: cluster.certificateAuthority,
                                                     what: "certificate-authority"),
            clientCertificate: clientCertificate,
            insecureSkipTLSVerify: cluster.insecureSkipTLSVerify == true)
    }
}

/// Reads `*-data` (base64) or file fields, files relative to the kubeconfig's directory.
private struct RelativeFiles {
    var directory: String

    func path(_ file: String) -> String {
        file.hasPrefix("/") ? file : URL(fileURLWithPath: directory).appendingPathComponent(file).path
    }

    func contents(data: String?, file: String?, what: String) throws -> [UInt8]? {
        if let data, !data.isEmpty {
            guard let decoded = Data(base64Encoded: data, options: .ignoreUnknownCharacters) else {
                throw ConnectionError("\(what)-data is not base64")
            }
            return Array(decoded)
        }
        guard let file, !file.isEmpty else { return nil }
        guard let contents = FileManager.default.contents(atPath: path(file)) else {
            throw ConnectionError("cannot read \(what) \(path(file))")
        }
        return Array(contents)
    }
}
