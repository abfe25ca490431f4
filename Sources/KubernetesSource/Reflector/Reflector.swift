import AsyncHTTPClient
import Foundation
import Logging
import Metrics
import NIOCore
import Proxy

/// Timings of list and watch requests.
public struct WatchSettings: Sendable {
    /// Items per list page.
    public var pageSize = 500
    /// The watch's `timeoutSeconds`; each watch gets between this and twice this, as client-go's,
    /// so that many nodes do not re-watch in step.
    public var watchTimeout: Duration = .seconds(300)
    /// A watch stream with no event (or bookmark) for this long is given up and re-watched.
    public var idleTimeout: Duration = .seconds(300)
    /// A response whose headers have not all arrived by then is given up (and backed off from):
    /// the idle timeout alone lets a server that sends nothing, or a byte at a time, hold a
    /// request for minutes.
    public var headerTimeout: Duration = .seconds(30)
    /// A list page over this many bytes is refused, not read further: decoding takes many times a
    /// page's size in memory. A full page of 500 EndpointSlices of 100 endpoints is about 17 MiB.
    public var maximumPageBytes = TextLimits.listBytes
    public var backoff = Backoff()

    public init() {}
}

/// What changed in a reflector's objects, keyed by `namespace/name` (nil: deleted), and whether they
/// are a complete picture yet.
struct ReflectorUpdate<Object: Hashable & Sendable>: Sendable {
    var changes: [String: Object?]
    var hasSynced: Bool
}

/// Runs a `ReflectorMachine` against the API server until cancelled, handing every change of its
/// items to `publish`.
struct Reflector<Object: Hashable & Sendable>: Sendable {
    let resource: APIResource<Object>
    let client: APIClient
    let settings: WatchSettings
    let logger: Logger
    let metrics: any MetricsFactory
    let publish: @Sendable (ReflectorUpdate<Object>) -> Void

    func run() async {
        var machine = ReflectorMachine<Object>(backoff: settings.backoff)
        var next = machine.start()
        while !Task.isCancelled {
            if let reason = next.restart {
                Counter(label: "kipvs_watch_restarts_total",
                        dimensions: [("resource", resource.name), ("reason", reason.rawValue)], factory: metrics).increment()
            }
            if next.delay > .zero {
                do { try await Task.sleep(for: next.delay) } catch { return }
            }
            switch next.request {
            case .list(let token):
                next = await list(continueToken: token, &machine)
            case .watch(let version):
                next = await watch(from: version, &machine)
            }
        }
    }

    private func list(continueToken: String?, _ machine: inout ReflectorMachine<Object>) async -> ReflectorMachine<Object>.Next {
        do {
            let text = try await client.list(resource.path, limit: settings.pageSize, continueToken: continueToken)
            let (page, problems) = try await decodeList(text)
            report(problems)
            let (revision, wasSynced) = (machine.revision, machine.hasSynced)
            let next = machine.listed(page)
            if case .watch = next.request {
                logger.debug("listed", metadata: ["resource": "\(resource.name)", "items": "\(machine.items.count)",
                                                  "resourceVersion": "\(page.resourceVersion)"])
                if machine.revision != revision || machine.hasSynced != wasSynced { publish(&machine) }
            }
            return next
        } catch {
            if Task.isCancelled { return machine.listFailed(error.failure) }
            logger.warning("list failed", metadata: ["resource": "\(resource.name)", "error": "\(error.description)"])
            return machine.listFailed(error.failure)
        }
    }

    private func watch(from version: String, _ machine: inout ReflectorMachine<Object>) async -> ReflectorMachine<Object>.Next {
        machine.watchStarted(at: .now)
        let timeout = settings.watchTimeout.seconds * Double.random(in: 1..<2)
        let body: HTTPClientResponse.Body
        do {
            body = try await client.watch(resource.path, resourceVersion: version, timeoutSeconds: max(Int(timeout), 1))
        } catch {
            if Task.isCancelled { return machine.watchEnded(.failed(error.failure), at: .now) }
            logger.warning("watch refused", metadata: ["resource": "\(resource.name)", "error": "\(error.description)"])
            return machine.watchEnded(.failed(error.failure), at: .now)
        }
        logger.trace("watching", metadata: ["resource": "\(resource.name)", "resourceVersion": "\(version)"])
        var lines = LineSplitter(maximumLength: TextLimits.objectBytes)
        do {
            for try await chunk in body {
                let revision = machine.revision
                defer { if machine.revision != revision { publish(&machine) } }
                let lines = try lines.append(chunk)
                if lines.isEmpty { continue }
                // Decoded in place: an event is bounded in size and nesting before it is parsed, and
                // takes tens of microseconds, less than a hop to another thread.
                let events = try lines.map { try resource.decodeEvent($0) }
                for (event, problem) in events {
                    if let problem { report([problem]) }
                    if let next = machine.received(event) {
                        if next.restart == .expired {
                            logger.info("watch expired; relisting", metadata: ["resource": "\(resource.name)"])
                        }
                        return next
                    }
                }
            }
            return machine.watchEnded(.closed, at: .now)
        } catch let error as HTTPClientError where error == .readTimeout {
            logger.info("watch idle; watching again", metadata: ["resource": "\(resource.name)"])
            return machine.watchEnded(.idle, at: .now)
        } catch let error as HTTPClientError where error == .deadlineExceeded {
            return machine.watchEnded(.closed, at: .now)
        } catch let error as MalformedResponse {
            logger.warning("watch stream unreadable", metadata: ["resource": "\(resource.name)", "error": "\(error)"])
            return machine.watchEnded(.failed(.malformed), at: .now)
        } catch {
            // Cancelled means shutting down: nothing to report.
            if !Task.isCancelled {
                logger.info("watch dropped", metadata: ["resource": "\(resource.name)", "error": "\(error)"])
            }
            return machine.watchEnded(.failed(.transport), at: .now)
        }
    }

    /// Parsed off the threads the sync loop runs on.
    private func decodeList(_ text: String) async throws(APIRequestError) -> (ListPage<Object>, [Proxy.LoadError]) {
        let resource = resource
        do {
            return try await YAMLText.offloaded { try resource.decodeList(text) }
        } catch let error as MalformedResponse {
            throw APIRequestError(failure: .malformed, description: error.description)
        } catch {
            throw APIRequestError(failure: .malformed, description: "\(error)")
        }
    }

    private func publish(_ machine: inout ReflectorMachine<Object>) {
        publish(ReflectorUpdate(changes: machine.takeChanges(), hasSynced: machine.hasSynced))
    }

    private func report(_ problems: [Proxy.LoadError]) {
        guard !problems.isEmpty else { return }
        Counter(label: "kipvs_api_objects_unreadable_total", dimensions: [("resource", resource.name)], factory: metrics)
            .increment(by: problems.count)
        for problem in problems {
            logger.error("object kipvs cannot read; its last good version stays",
                         metadata: ["resource": "\(resource.name)", "problem": "\(problem)"])
        }
    }
}

/// Splits a byte stream into lines: the API's JSON watch stream is one event per line.
struct LineSplitter {
    let maximumLength: Int
    private var partial: [UInt8] = []

    init(maximumLength: Int) {
        self.maximumLength = maximumLength
    }

    mutating func append(_ buffer: ByteBuffer) throws(MalformedResponse) -> [String] {
        partial.append(contentsOf: buffer.readableBytesView)
        var lines: [String] = []
        var start = 0
        while let newline = partial[start...].firstIndex(of: UInt8(ascii: "\n")) {
            if newline > start { lines.append(String(decoding: partial[start..<newline], as: UTF8.self)) }
            start = newline + 1
        }
        partial.removeFirst(start)
        guard partial.count <= maximumLength else {
            throw MalformedResponse(description: "watch event over \(maximumLength >> 20) MiB")
        }
        return lines
    }
}
