import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Proxy

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
    /// How long a response may take to send all its headers.
    var headerTimeout: Duration = .seconds(30)
    /// How much of an error response's body is read for the log.
    static let errorBodyBytes = 4096
    /// The largest list page accepted.
    var maximumBodySize = TextLimits.listBytes

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
        } catch is NIOTooManyBytesError {
            throw APIRequestError(failure: .malformed, description: "list \(path): a page over \(maximumBodySize >> 20) MiB")
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
        let response = try await executeWithinHeaderTimeout(request, path: path, deadline: deadline)
        guard response.status == .ok else {
            // The body is a metav1.Status whose message says why. Whatever the server put in it
            // (newlines, escape sequences, megabytes) the log gets one short, escaped line.
            var head: [UInt8] = []
            do {
                for try await chunk in response.body {
                    head += chunk.readableBytesView.prefix(Self.errorBodyBytes - head.count)
                    if head.count == Self.errorBodyBytes { break }  // the rest is not read
                }
            } catch {
                // What arrived is still worth showing; the status says what failed.
            }
            let body = Excerpt.bytes(head)
            throw APIRequestError(failure: .status(Int(response.status.code)),
                                  description: "\(path): \(response.status.code) \(Excerpt.text(response.status.reasonPhrase, limit: 40)) \(body)")
        }
        return response
    }

    /// The response head, or a transport failure once `headerTimeout` has passed without it.
    private func executeWithinHeaderTimeout(_ request: HTTPClientRequest, path: String, deadline: NIODeadline)
        async throws(APIRequestError) -> HTTPClientResponse {
        let http = http
        let headerTimeout = headerTimeout
        do {
            return try await withThrowingTaskGroup(of: HTTPClientResponse?.self) { group in
                group.addTask { try await http.execute(request, deadline: deadline) }
                group.addTask {
                    try await Task.sleep(for: headerTimeout)
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let response = first else {
                    throw APIRequestError(failure: .transport, description: "\(path): no response headers within \(headerTimeout)")
                }
                return response
            }
        } catch let error as APIRequestError {
            throw error
        } catch {
            throw APIRequestError(failure: .transport, description: "\(path): \(error)")
        }
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
