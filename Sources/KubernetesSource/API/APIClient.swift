import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// A failed API request, classified as the reflector needs it.
struct APIRequestError: Error, CustomStringConvertible {
    var failure: RequestFailure
    var description: String
}

/// List and watch requests against one API server, over AsyncHTTPClient.
struct APIClient: Sendable {
    let http: HTTPClient
    let connection: ClusterConnection
    /// How long a list may take, first byte to last.
    var listTimeout: TimeAmount = .seconds(60)
    /// The largest list page or watch line accepted.
    var maximumBodySize = 64 << 20

    /// An HTTP client whose idle read timeout is the watch idle timeout: a stream that is quiet for
    /// longer fails with `HTTPClientError.readTimeout`.
    static func makeHTTPClient(for connection: ClusterConnection, idleTimeout: Duration) throws -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.tlsConfiguration = try connection.tlsConfiguration()
        configuration.timeout = .init(connect: .seconds(10), read: .nanoseconds(Int64(idleTimeout.seconds * 1e9)))
        configuration.redirectConfiguration = .disallow
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// One page of `path`: `limit` items from `continueToken` on.
    func list(_ path: String, limit: Int, continueToken: String?) async throws(APIRequestError) -> String {
        var query = ["limit=\(limit)"]
        if let continueToken { query.append("continue=\(escape(continueToken))") }
        let response = try await send(path, query: query, deadline: .now() + listTimeout)
        do {
            let body = try await response.body.collect(upTo: maximumBodySize)
            return String(buffer: body)
        } catch {
            throw APIRequestError(failure: .transport, description: "list \(path): \(error)")
        }
    }

    /// Starts a watch of `path` after `resourceVersion`; the server ends it after `timeoutSeconds`.
    func watch(_ path: String, resourceVersion: String, timeoutSeconds: Int) async throws(APIRequestError)
        -> HTTPClientResponse.Body {
        let query = ["watch=1", "resourceVersion=\(escape(resourceVersion))", "allowWatchBookmarks=true",
                     "timeoutSeconds=\(timeoutSeconds)"]
        // A little past the server's own end, so that a server which forgets it is cut off.
        let deadline = NIODeadline.now() + .seconds(Int64(timeoutSeconds) + 30)
        return try await send(path, query: query, deadline: deadline).body
    }

    private func send(_ path: String, query: [String], deadline: NIODeadline) async throws(APIRequestError)
        -> HTTPClientResponse {
        let base = connection.server.hasSuffix("/") ? String(connection.server.dropLast()) : connection.server
        // A path may carry its own query (a field selector).
        let separator = path.contains("?") ? "&" : "?"
        var request = HTTPClientRequest(url: "\(base)\(path)\(separator)\(query.joined(separator: "&"))")
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "kipvs")
        do {
            if let authorization = try connection.authorization() {
                request.headers.add(name: "Authorization", value: authorization)
            }
        } catch {
            throw APIRequestError(failure: .transport, description: "\(error)")
        }
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, deadline: deadline)
        } catch {
            throw APIRequestError(failure: .transport, description: "\(path): \(error)")
        }
        guard response.status == .ok else {
            // The body is a metav1.Status whose message says why; a short excerpt is enough for a log.
            let body = (try? await response.body.collect(upTo: 4096)).map { String(buffer: $0) } ?? ""
            throw APIRequestError(failure: .status(Int(response.status.code)),
                                  description: "\(path): \(response.status.code) \(response.status.reasonPhrase) \(body)")
        }
        return response
    }

    private func escape(_ value: String) -> String {
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+?#")
        return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
    }
}

extension ClusterConnection {
    func tlsConfiguration() throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        do {
            if let certificateAuthority {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(certificateAuthority))
            }
            if let clientCertificate {
                tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(clientCertificate.certificateChain)
                    .map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: clientCertificate.privateKey, format: .pem))
            }
        } catch {
            throw ConnectionError("invalid certificate or key: \(error)")
        }
        if insecureSkipTLSVerify { tls.certificateVerification = .none }
        return tls
    }
}
