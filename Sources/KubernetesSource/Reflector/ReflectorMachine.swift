/// A request a reflector sends to the API server.
public enum ReflectorRequest: Hashable, Sendable {
    /// One page of a full list; nil `continueToken` starts a new list.
    case list(continueToken: String?)
    /// A watch that replays everything after `resourceVersion`.
    case watch(resourceVersion: String)
}

/// Why a list or watch was started over (the `reason` label of `kipvs_watch_restarts_total`).
public enum RestartReason: String, Hashable, Sendable, CaseIterable {
    /// 410 Gone: the resourceVersion was compacted away; only a new list helps.
    case expired
    /// The server ended the watch, normally when its timeoutSeconds ran out.
    case closed
    /// The connection failed or broke.
    case dropped
    /// No event arrived within the idle timeout.
    case idle
    /// Any other error status, in the response or in an ERROR event.
    case error
}

/// How a request failed.
public enum RequestFailure: Hashable, Sendable {
    /// An HTTP status other than 200.
    case status(Int)
    /// No usable connection: refused, reset, TLS, or cut mid-response.
    case transport
    /// A response that could not be parsed.
    case malformed
}

/// One page of a list response, items already decoded and keyed by `namespace/name`.
/// Objects not meant for this proxy are left out.
public struct ListPage<Object: Hashable & Sendable>: Sendable {
    public var items: [String: Object]
    public var resourceVersion: String
    /// The next page's token; nil or empty on the last page.
    public var continueToken: String?
    /// Objects that exist but could not be decoded: what was held for them stays.
    public var undecodable: Set<String>

    public init(items: [String: Object], resourceVersion: String, continueToken: String? = nil,
                undecodable: Set<String> = []) {
        self.items = items
        self.resourceVersion = resourceVersion
        self.continueToken = continueToken
        self.undecodable = undecodable
    }
}

/// A watch event. A nil object is one that exists but is not for this proxy: it is treated as absent.
public enum WatchEvent<Object: Hashable & Sendable>: Sendable {
    case added(key: String, object: Object?, resourceVersion: String)
    case modified(key: String, object: Object?, resourceVersion: String)
    case deleted(key: String, resourceVersion: String)
    /// An object added or changed into something that cannot be decoded: its last good version
    /// (if any) stays, as the API server has accepted the change and an update must not delete.
    case undecodable(key: String, resourceVersion: String)
    case bookmark(resourceVersion: String)
    /// An ERROR event: the `code` of the Status it carries.
    case error(code: Int)
}

/// How a watch stream ended, when not by an ERROR event.
public enum WatchEnd: Hashable, Sendable {
    /// The server finished the response.
    case closed
    /// Nothing arrived within the idle timeout.
    case idle
    /// The watch was refused, or its stream broke.
    case failed(RequestFailure)
}

/// client-go's reflector as a pure state machine: responses and events in, the next request out.
/// It lists (page by page), watches from the list's resourceVersion, follows bookmarks, relists
/// when the version is gone (410), re-watches from the last version after anything else, and
/// backs off on failures. The last complete list stays in `items` through every fault.
public struct ReflectorMachine<Object: Hashable & Sendable>: Sendable {
    /// What to do after an input.
    public struct Next: Hashable, Sendable {
        public var request: ReflectorRequest
        public var delay: Duration
        /// Set when this request starts a list or watch over because of a fault.
        public var restart: RestartReason?

        public init(_ request: ReflectorRequest, after delay: Duration = .zero, restart: RestartReason? = nil) {
            self.request = request
            self.delay = delay
            self.restart = restart
        }
    }

    /// A watch that ends on its own sooner than this, having delivered nothing, counts as a
    /// failure (as client-go's "very short watch"), so a server that closes at once is not hammered.
    public static var shortestWatch: Duration { .seconds(1) }

    /// The objects as of `resourceVersion`, keyed by `namespace/name`.
    public private(set) var items: [String: Object] = [:]
    /// Whether a list has completed: `items` is a complete picture.
    public private(set) var hasSynced = false
    /// The version to watch from: the list's, then each event's and bookmark's.
    public private(set) var resourceVersion: String?
    /// Increases whenever `items` changes.
    public private(set) var revision = 0
    /// Keys whose item changed since `takeChanges()` was last called.
    private var changedKeys: Set<String> = []
    public private(set) var backoff: Backoff

    private var listInProgress: [String: Object]?
    private var undecodableInList: Set<String> = []
    private var watchStartedAt: ContinuousClock.Instant?
    private var watchDeliveredEvents = false
    private let random: @Sendable () -> Double

    /// `random` returns values in [0, 1) for the backoff's jitter.
    public init(backoff: Backoff = Backoff(), random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }) {
        self.backoff = backoff
        self.random = random
    }

    /// The first request.
    public mutating func start() -> Next {
        listInProgress = nil
        undecodableInList = []
        return Next(.list(continueToken: nil))
    }

    /// A list page arrived: ask for the next one, or, after the last, replace `items` and watch.
    public mutating func listed(_ page: ListPage<Object>) -> Next {
        var collected = listInProgress ?? [:]
        collected.merge(page.items) { _, new in new }
        undecodableInList.formUnion(page.undecodable)
        if let token = page.continueToken, !token.isEmpty {
            listInProgress = collected
            return Next(.list(continueToken: token))
        }
        // An object that cannot be decoded keeps the version last held for it.
        for key in undecodableInList where collected[key] == nil { collected[key] = items[key] }
        listInProgress = nil
        undecodableInList = []
        replaceItems(with: collected)
        hasSynced = true
        resourceVersion = page.resourceVersion
        backoff.reset()
        return Next(.watch(resourceVersion: page.resourceVersion))
    }

    /// A list request failed: start the list over after a backoff (a 410 here is an expired
    /// continue token). Pages already read are dropped; `items` stays.
    public mutating func listFailed(_ failure: RequestFailure) -> Next {
        listInProgress = nil
        undecodableInList = []
        return Next(.list(continueToken: nil), after: backoff.next(random: random()), restart: reason(for: failure))
    }

    /// A watch request is about to be sent.
    public mutating func watchStarted(at now: ContinuousClock.Instant) {
        watchStartedAt = now
        watchDeliveredEvents = false
    }

    /// An event arrived on the watch: nil means keep reading; otherwise the stream is done with.
    public mutating func received(_ event: WatchEvent<Object>) -> Next? {
        switch event {
        case .added(let key, let object, let version), .modified(let key, let object, let version):
            setItem(object, forKey: key)
            advance(to: version)
        case .deleted(let key, let version):
            setItem(nil, forKey: key)
            advance(to: version)
        case .undecodable(_, let version):
            advance(to: version)
        case .bookmark(let version):
            advance(to: version)
        case .error(let code):
            return code == 410 ? relist(reason: .expired) : rewatch(reason: .error, backingOff: true)
        }
        return nil
    }

    /// The watch stream ended without an ERROR event.
    public mutating func watchEnded(_ end: WatchEnd, at now: ContinuousClock.Instant) -> Next {
        switch end {
        case .closed:
            let lasted = watchStartedAt.map { now - $0 } ?? .zero
            return rewatch(reason: .closed, backingOff: !watchDeliveredEvents && lasted < Self.shortestWatch)
        case .idle:
            return rewatch(reason: .idle, backingOff: false)
        case .failed(.status(410)):
            return relist(reason: .expired)
        case .failed(let failure):
            return rewatch(reason: reason(for: failure), backingOff: true)
        }
    }

    private mutating func advance(to version: String) {
        resourceVersion = version
        watchDeliveredEvents = true
        backoff.reset()
    }

    private mutating func relist(reason: RestartReason) -> Next {
        listInProgress = nil
        undecodableInList = []
        return Next(.list(continueToken: nil), after: backoff.next(random: random()), restart: reason)
    }

    private mutating func rewatch(reason: RestartReason, backingOff: Bool) -> Next {
        // Only reachable after a list completed, which set the version.
        let version = resourceVersion ?? ""
        let delay = backingOff ? backoff.next(random: random()) : .zero
        return Next(.watch(resourceVersion: version), after: delay, restart: reason)
    }

    private func reason(for failure: RequestFailure) -> RestartReason {
        switch failure {
        case .status(410): .expired
        case .status, .malformed: .error
        case .transport: .dropped
        }
    }

    /// The items changed since the last call, each with its current version (nil: deleted).
    public mutating func takeChanges() -> [String: Object?] {
        defer { changedKeys = [] }
        return Dictionary(uniqueKeysWithValues: changedKeys.map { ($0, items[$0]) })
    }

    private mutating func setItem(_ object: Object?, forKey key: String) {
        guard items[key] != object else { return }
        items[key] = object
        changedKeys.insert(key)
        revision += 1
    }

    /// A relist: only the objects that differ count as changes.
    private mutating func replaceItems(with new: [String: Object]) {
        var changed = false
        for (key, object) in new where items[key] != object {
            changedKeys.insert(key)
            changed = true
        }
        for key in items.keys where new[key] == nil {
            changedKeys.insert(key)
            changed = true
        }
        guard changed else { return }
        items = new
        revision += 1
    }
}
