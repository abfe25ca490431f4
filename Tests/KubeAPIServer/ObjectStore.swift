import NIOConcurrencyHelpers

/// What a watch stream is sent.
enum WatchMessage: Sendable {
    /// `{"type": …, "object": …}`
    case event(type: String, object: JSON)
    /// A line sent as it is, whatever it holds.
    case raw(String)
    /// End the response, as a server does when a watch times out or it restarts.
    case close
}

/// The server's objects with etcd-like versions: one counter for every change, a history of
/// changes that watches replay from any version not yet compacted away, and snapshots at any
/// retained version for paginated lists.
final class ObjectStore: Sendable {
    struct Change: Sendable {
        var revision: Int
        var resource: Resource
        var type: String
        var key: String
        /// The object as of this change (for a deletion, as it was last).
        var object: JSON
    }

    private struct Watcher {
        var resource: Resource
        var namespace: String?
        var continuation: AsyncStream<WatchMessage>.Continuation
        /// A stalled watcher is sent nothing more, but stays open.
        var stalled: Bool
    }

    private struct State {
        var revision = 1
        var objects: [Resource: [String: JSON]] = [:]
        /// The state as of `compactedRevision`; `history` holds every change after it.
        var base: [Resource: [String: JSON]] = [:]
        var compactedRevision = 1
        var history: [Change] = []
        var watchers: [Int: Watcher] = [:]
        var nextWatcher = 0
        var stalled = false
    }

    private let state = NIOLockedValueBox(State())

    var revision: Int { state.withLockedValue { $0.revision } }

    /// What a write needs of the object as it is, as the API server's verbs do.
    enum Precondition: Sendable {
        /// Create (POST): there must be none.
        case absent
        /// Replace (PUT): there must be one, and at `resourceVersion` when the new object names one.
        case present
        /// Create or replace (server-side apply, and the tests' own `put`).
        case none
    }

    enum WriteResult: Sendable {
        case written(JSON, created: Bool)
        case alreadyExists
        case notFound
        /// The object names a resourceVersion that is not the current one.
        case conflict
    }

    /// Creates or replaces an object; returns it as stored, with its resourceVersion.
    @discardableResult
    func put(_ resource: Resource, _ object: JSON) -> JSON {
        guard case .written(let stored, _) = write(resource, object, requiring: .none) else {
            preconditionFailure("a write without precondition always succeeds")
        }
        return stored
    }

    /// Creates or replaces an object if `precondition` holds: a new resourceVersion and an ADDED or
    /// MODIFIED event. A replacement keeps the uid and creationTimestamp it had, as the API server does.
    func write(_ resource: Resource, _ object: JSON, requiring precondition: Precondition) -> WriteResult {
        state.withLockedValue { state in
            var object = object
            let key = Self.key(of: object)
            let current = state.objects[resource]?[key]
            switch (precondition, current) {
            case (.absent, _?): return .alreadyExists
            case (.present, nil): return .notFound
            case (.present, let current?):
                if let wanted = object["metadata"]?["resourceVersion"]?.string, !wanted.isEmpty,
                   wanted != current["metadata"]?["resourceVersion"]?.string {
                    return .conflict
                }
            default: break
            }
            state.revision += 1
            var metadata = object["metadata"] ?? [:]
            metadata["resourceVersion"] = .string(String(state.revision))
            if metadata["namespace"] == nil { metadata["namespace"] = "default" }
            for kept in ["uid", "creationTimestamp"] where current?["metadata"]?[kept] != nil {
                metadata[kept] = current?["metadata"]?[kept]
            }
            if metadata["uid"] == nil { metadata["uid"] = .string("uid-\(resource.rawValue)-\(key)") }
            if metadata["creationTimestamp"] == nil { metadata["creationTimestamp"] = "2025-01-01T00:00:00Z" }
            object["metadata"] = metadata
            object["kind"] = .string(resource.kind)
            object["apiVersion"] = .string(resource.apiVersion)
            state.objects[resource, default: [:]][key] = object
            Self.record(Change(revision: state.revision, resource: resource, type: current == nil ? "ADDED" : "MODIFIED",
                               key: key, object: object), in: &state)
            return .written(object, created: current == nil)
        }
    }

    /// Deletes an object; returns it as its DELETED event carries it, or nil when there was none.
    func remove(_ resource: Resource, namespace: String, name: String) -> JSON? {
        state.withLockedValue { state in
            let key = "\(namespace)/\(name)"
            guard var object = state.objects[resource]?.removeValue(forKey: key) else { return nil }
            state.revision += 1
            object["metadata"]?["resourceVersion"] = .string(String(state.revision))
            Self.record(Change(revision: state.revision, resource: resource, type: "DELETED", key: key, object: object),
                        in: &state)
            return object
        }
    }

    /// Deletes an object; false when there was none.
    @discardableResult
    func delete(_ resource: Resource, namespace: String, name: String) -> Bool {
        remove(resource, namespace: namespace, name: name) != nil
    }

    /// Current objects, by `namespace/name`.
    func objects(_ resource: Resource) -> [String: JSON] {
        state.withLockedValue { $0.objects[resource] ?? [:] }
    }

    /// The objects as of `revision`, or nil when that version is compacted away.
    func snapshot(_ resource: Resource, at revision: Int) -> [String: JSON]? {
        state.withLockedValue { state in
            guard revision >= state.compactedRevision else { return nil }
            var objects = state.base[resource] ?? [:]
            for change in state.history where change.resource == resource && change.revision <= revision {
                objects[change.key] = change.type == "DELETED" ? nil : change.object
            }
            return objects
        }
    }

    /// Forgets history up to now: older versions answer 410 Gone.
    func compact() {
        state.withLockedValue { state in
            state.base = state.objects
            state.compactedRevision = state.revision
            state.history = []
        }
    }

    /// Moves the version on by one with no change, then compacts: every earlier version is gone.
    func advanceAndCompact() {
        state.withLockedValue { state in
            state.revision += 1
            state.base = state.objects
            state.compactedRevision = state.revision
            state.history = []
        }
    }

    /// Opens a watch: replays changes after `revision` (or, with nil, reports every current object
    /// as ADDED), then follows. nil when the version is compacted away.
    func watch(_ resource: Resource, namespace: String?, after revision: Int?) -> AsyncStream<WatchMessage>? {
        state.withLockedValue { state in
            if let revision, revision < state.compactedRevision { return nil }
            let (stream, continuation) = AsyncStream<WatchMessage>.makeStream()
            if state.stalled {
                // Nothing at all, not even the replay.
            } else if let revision {
                for change in state.history where change.resource == resource && change.revision > revision
                    && (namespace == nil || change.key.hasPrefix("\(namespace!)/")) {
                    continuation.yield(.event(type: change.type, object: change.object))
                }
            } else {
                for (key, object) in (state.objects[resource] ?? [:]).sorted(by: { $0.key < $1.key })
                where namespace == nil || key.hasPrefix("\(namespace!)/") {
                    continuation.yield(.event(type: "ADDED", object: object))
                }
            }
            let id = state.nextWatcher
            state.nextWatcher += 1
            state.watchers[id] = Watcher(resource: resource, namespace: namespace, continuation: continuation,
                                         stalled: state.stalled)
            continuation.onTermination = { [weak self] _ in
                self?.state.withLockedValue { _ = $0.watchers.removeValue(forKey: id) }
            }
            return stream
        }
    }

    var openWatches: Int { state.withLockedValue { $0.watchers.count } }

    /// Sends `message` (made per resource) to every open watch that is not stalled.
    func broadcast(_ message: (Resource, Int) -> WatchMessage) {
        state.withLockedValue { state in
            for watcher in state.watchers.values where !watcher.stalled {
                watcher.continuation.yield(message(watcher.resource, state.revision))
            }
        }
    }

    /// Ends every open watch, stalled or not.
    func closeWatches() {
        // Finished outside the lock: finishing runs `onTermination`, which takes it.
        let open = state.withLockedValue { state in
            defer { state.watchers = [:] }
            return Array(state.watchers.values)
        }
        for watcher in open {
            watcher.continuation.yield(.close)
            watcher.continuation.finish()
        }
    }

    /// While stalled, open and new watches get nothing at all; they stay stalled after `stall(false)`.
    func stall(_ stalled: Bool) {
        state.withLockedValue { state in
            state.stalled = stalled
            if stalled { for id in state.watchers.keys { state.watchers[id]!.stalled = true } }
        }
    }

    static func key(of object: JSON) -> String {
        let namespace = object["metadata"]?["namespace"]?.string ?? "default"
        return "\(namespace)/\(object["metadata"]?["name"]?.string ?? "")"
    }

    private static func record(_ change: Change, in state: inout State) {
        state.history.append(change)
        for watcher in state.watchers.values where watcher.resource == change.resource && !watcher.stalled
            && (watcher.namespace == nil || change.key.hasPrefix("\(watcher.namespace!)/")) {
            watcher.continuation.yield(.event(type: change.type, object: change.object))
        }
    }
}
