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
    /// The largest list page read, in bytes. A page is held whole before it is parsed, so this
    /// bounds what one list request holds before parsing (which holds many times more: some 20
    /// times, for a page of small Services); a larger page fails
    /// the list, naming the resource and this limit, without being read further, and the list is
    /// tried again after a backoff. 64 MiB: a page of 500 EndpointSlices of 100 endpoints each,
    /// with their managedFields, is about 17 MiB.
    var maximumBodySize = TextLimits.listBytes

    /// An HTTP client whose idle read timeout is the watch idle timeout: a stream that is quiet for
    /// longer fails with `HTTPClientError.readTimeout`.
    static func makeHTTPClient(for connection: ClusterConnection, idleTimeout: Duration) throws -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.tlsConfiguration = try connection.tlsConfiguration()
        configuration.timeout = .init(connect: .seconds(10), read: .nanoseconds(Int64(idleTimeout.seconds * 1e9)))
        configuration.redirectConfiguration = .disallow
        // A failed connect or TLS handshake fails the request at once, with its own error, and the
        // reflector's backoff paces the next try; by default the pool would retry it unseen
        // (100 ms on) until the request's deadline, and the log would only say it timed out.
        configuration.connectionPool.retryConnectionEstablishment = false
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
            throw APIRequestError(failure: .malformed,
                                  description: "list \(path): a page over the limit of \(Self.byteCount(maximumBodySize)); not read further")
        } catch {
            throw transportFailure(error, "list \(path)")
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
            throw APIRequestError(failure: .transport, description: "\(path): \(error)")
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
                    throw APIRequestError(failure: .transport,
                                          description: "\(path) at \(connection.server): no response headers within \(headerTimeout)")
                }
                return response
            }
        } catch let error as APIRequestError {
            throw error
        } catch {
            throw transportFailure(error, path)
        }
    }

    /// A failure below HTTP, naming the server; a TLS one says so, as NIOSSL's error names only
    /// BoringSSL's codes.
    private func transportFailure(_ error: any Error, _ what: String) -> APIRequestError {
        let tls = error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError
        return APIRequestError(failure: .transport,
                               description: "\(what) at \(connection.server): \(tls ? "TLS: " : "")\(error)")
    }

    /// `64 MiB`, or `1000 bytes` when not a whole number of MiB.
    static func byteCount(_ bytes: Int) -> String {
        bytes % (1 << 20) == 0 ? "\(bytes >> 20) MiB" : "\(bytes) bytes"
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
        // Closing waits this long for the server's close_notify. Nothing more is read from a
        // connection being closed, and a server that does not read while it streams a watch never
        // answers: shutting down would wait the default 5 s.
        tls.shutdownTimeout = .seconds(1)
        if insecureSkipTLSVerify { tls.certificateVerification = .none }
        return tls
    }
}
