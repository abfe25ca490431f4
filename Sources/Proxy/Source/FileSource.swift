import Foundation
import Logging

/// Time for `FileSource`: the system's, or a test's.
public struct SourceClock: Sendable {
    public var now: @Sendable () -> ContinuousClock.Instant
    public var sleep: @Sendable (Duration) -> Void

    public init(now: @escaping @Sendable () -> ContinuousClock.Instant, sleep: @escaping @Sendable (Duration) -> Void) {
        self.now = now
        self.sleep = sleep
    }

    public static let system = SourceClock(now: { .now }, sleep: { duration in
        let (seconds, attoseconds) = duration.components
        Thread.sleep(forTimeInterval: Double(seconds) + Double(attoseconds) / 1e18)
    })
}

/// Services and EndpointSlices from a manifest file or directory, re-read file by file as they
/// change: a change of one file costs a read of that file, whatever the number of the others.
/// inotify says when and which files changed (see `ManifestWatcher`); where it is unavailable,
/// every file is looked at each second. A file is read half-written more often than not
/// (`kubectl get -o yaml > f` truncates first, an editor writes in pieces), so a change is taken
/// with care:
///
/// - only once the changed files have stopped changing: each the same size, modification time and
///   inode in two looks at least `settleTime` apart (a rename into place changes the inode);
/// - except a file whose last inotify event says it is whole: closed after writing
///   (IN_CLOSE_WRITE) or renamed into place (IN_MOVED_TO). Waiting would tell nothing more, so it
///   is read at once. An event after that one (a write, a new open and truncation) puts it back
///   under the settle rule, and so does one that comes before the read is done: every event
///   queued by then is read before the read counts. The look every second, without inotify,
///   cannot tell a finished writer from a paused one, and keeps the settle rule;
/// - a file with no object in it (empty, or truncated to nothing) never replaces the last good
///   state: it is reported and the last good state stays; so does any problem in any file, or an
///   object defined in two files;
/// - a YAML file whose last line has no newline may be cut mid-line: it is read only once it has
///   stood unchanged for `unfinishedLineTime`;
/// - a change that removes more than half of the Services is held back, with a warning, and
///   applied only if it still stands after `dropHoldTime`;
/// - the files are read and parsed on a thread of their own, so the sync loop goes on (and
///   repairs the kernel) however long a large file takes. Only the first read, before there is any
///   state to keep, is waited for.
///
/// kube-proxy has no file source; these rules are kipvs' own.
public final class FileSource: ClusterSource {
    /// Two looks this far apart that see the same files mean the writer is done.
    public static let settleTime: Duration = .milliseconds(100)
    /// How long a YAML file ending mid-line must stand still before it is read.
    public static let unfinishedLineTime: Duration = .seconds(2)
    /// How long a change that removes more than half of the Services must stand before it applies.
    public static let dropHoldTime: Duration = .seconds(5)

    /// How the source learns which files changed.
    enum Watching {
        /// inotify events, or a look every second where inotify is unavailable.
        case inotify
        /// A look at every file each second, as without inotify.
        case scanning
        /// None: every poll looks at every file (a test moves time by hand).
        case none
    }

    public let path: String
    private let clock: SourceClock
    private let logger: Logger
    /// Whether reads run on a thread of their own (tests may read in place).
    let readsInBackground: Bool
    private let scanner: ManifestScanner
    private let wake = WakeSlot()
    let watcher: ManifestWatcher?

    /// A file (or the path itself) as last looked at, since when it has looked so, and as it
    /// looked when its content was read; whether it is whole, by the number of the watcher's
    /// event that left it so (nil: not known to be).
    private struct Tracked {
        var look: ManifestLook
        var since: ContinuousClock.Instant
        var read: ManifestLook?
        var whole: UInt64?
    }

    private var tracked: [String: Tracked] = [:]
    /// Files whose look differs from the one their content was read at.
    private var unsettled: Set<String> = []
    private var manifests = ManifestSet()
    private var reading: Reading?
    /// Since when a large drop has been waiting to stand long enough.
    private var held: ContinuousClock.Instant?
    private var answered = false
    private var handedOutOnce = false
    /// Files read and parsed so far.
    private(set) var filesParsed = 0

    public convenience init(path: String, clock: SourceClock = .system, logger: Logger = Logger(label: "kipvs")) {
        self.init(path: path, clock: clock, logger: logger, readsInBackground: true, watching: .inotify)
    }

    init(path: String, clock: SourceClock, logger: Logger, readsInBackground: Bool, watching: Watching = .none) {
        self.path = path
        self.clock = clock
        self.logger = logger
        self.readsInBackground = readsInBackground
        scanner = ManifestScanner(root: path)
        switch watching {
        case .inotify, .scanning:
            var logger = logger
            logger[metadataKey: "source"] = "file:\(path)"
            watcher = ManifestWatcher(scanner: scanner, wake: wake, logger: logger, inotify: watching == .inotify)
        case .none:
            watcher = nil
        }
    }

    deinit {
        watcher?.stop()
    }

    public var name: String { "file:\(path)" }

    public func setWake(_ wake: @escaping @Sendable () -> Void) { self.wake.set(wake) }

    /// nil when nothing changed since the last call (or a change is not yet safe to take);
    /// otherwise the objects that changed or why the files could not be used.
    public func poll() -> Result<ClusterChanges, LoadError>? {
        // Before the first answer there is nothing to keep: wait for the files to settle and read them.
        if !answered {
            for _ in 0..<50 {
                if let answer = step(waitingForRead: true) {
                    answered = true
                    return answer
                }
                clock.sleep(Self.settleTime)
            }
            return nil
        }
        return step(waitingForRead: false)
    }

    private func step(waitingForRead: Bool) -> Result<ClusterChanges, LoadError>? {
        if let reading {
            if waitingForRead { reading.wait() }
            guard let outcome = reading.outcome else { return nil }
            self.reading = nil
            return takeAndLookOn(outcome)
        }
        let now = clock.now()
        lookAgain(now: now)
        if unsettled.isEmpty { return heldChangeIfDue(now: now) }
        if let due = settledAt(), now < due {
            watcher?.wake(at: due)
            return nil
        }
        let files = unsettled.sorted()
        let reading = Reading(files: files.map { ($0, tracked[$0]!.look) }, root: path,
                              before: Dictionary(uniqueKeysWithValues: files.compactMap { file in manifests.contents[file].map { (file, $0) } }),
                              whole: Dictionary(uniqueKeysWithValues: files.compactMap { file in tracked[file]!.whole.map { (file, $0) } }),
                              watcher: watcher)
        if readsInBackground && !waitingForRead {
            reading.start(then: wake)
            self.reading = reading
            return nil
        }
        reading.run()
        return takeAndLookOn(reading.outcome!)
    }

    /// When every changed file will have stood long enough: a change that spans files (an object
    /// moved) is taken whole. nil when none changed.
    private func settledAt() -> ContinuousClock.Instant? {
        unsettled.map { file in
            let seen = tracked[file]!
            if seen.look.endsMidLine { return seen.since + Self.unfinishedLineTime }
            // Whole: a second look could only agree.
            return seen.whole != nil ? seen.since : seen.since + Self.settleTime
        }.max()
    }

    /// Takes a read, then looks at what changed while it ran: nothing else would wake the caller for it.
    private func takeAndLookOn(_ outcome: Reading.Outcome) -> Result<ClusterChanges, LoadError>? {
        let answer = take(outcome)
        let now = clock.now()
        lookAgain(now: now)
        if let due = settledAt() { watcher?.wake(at: max(due, now)) }
        return answer
    }

    /// Looks at the files that may have changed: those the watcher names, and those still settling.
    private func lookAgain(now: ContinuousClock.Instant) {
        let (everything, changed, whole) = watcher?.takeChanges() ?? (true, [], [:])
        var looks: [String: ManifestLook] = [:]
        let all = everything || changed.contains(path)
        if all {
            looks = scanner.lookAtEverything(previous: tracked.mapValues(\.look))
            for file in tracked.keys where looks[file] == nil { looks[file] = .absent }
        } else {
            for file in changed.union(unsettled) { looks[file] = scanner.look(at: file, previous: tracked[file]?.look) }
        }
        for (file, look) in looks {
            note(look, of: file, now: now, events: all || changed.contains(file) ? .some(whole[file]) : nil)
        }
    }

    /// Notes a look; `events` says whether the watcher told of events since the last look, and
    /// if so, the one after which the file was whole.
    private func note(_ look: ManifestLook, of file: String, now: ContinuousClock.Instant, events: UInt64?? = nil) {
        let before = tracked[file]
        var whole = events ?? before?.whole
        if before?.look != look {
            if before?.look.linkTarget != look.linkTarget {
                watcher?.follow(file, to: look.linkTarget)
                whole = nil  // the new target's own events were not watched yet
            }
            // Changed, and no event told: not whole as far as is known.
            if events == nil { whole = nil }
            tracked[file] = Tracked(look: look, since: now, read: before?.read)
        }
        tracked[file]?.whole = whole
        let seen = tracked[file]!
        if look == .absent, seen.read == nil, file != path {
            // Come and gone before it was read: nothing to take back.
            tracked[file] = nil
            unsettled.remove(file)
        } else if seen.look == seen.read {
            unsettled.remove(file)
        } else {
            unsettled.insert(file)
        }
    }

    /// Uses what a read found, unless the files changed while it ran.
    private func take(_ outcome: Reading.Outcome) -> Result<ClusterChanges, LoadError>? {
        let now = clock.now()
        var changedWhileRead = false
        for (file, look) in outcome.files {
            let again = scanner.look(at: file, previous: look)
            if again != look {
                note(again, of: file, now: now)
                changedWhileRead = true
            } else if outcome.notWhole.contains(file) {
                // An event came after the one that left it whole: the read may have met a writer.
                tracked[file]?.whole = nil
                changedWhileRead = true
            }
        }
        if changedWhileRead {
            logger.debug("manifests changed while being read; reading again once they settle", metadata: ["source": "\(name)"])
            watcher?.wake(at: now + Self.settleTime)
            return nil
        }
        for (file, look) in outcome.files {
            manifests.replace(file, with: outcome.contents[file], delta: outcome.deltas[file]!)
            if look == .absent, file != path {
                tracked[file] = nil
            } else {
                tracked[file]?.read = look
                tracked[file]?.whole = nil
            }
            unsettled.remove(file)
        }
        filesParsed += outcome.parsed
        held = nil
        if let refusal = manifests.refusal() { return .failure(refusal) }
        let services = manifests.serviceCounts
        if handedOutOnce, services.removed * 2 > services.handedOut {
            held = now
            logger.warning("suspicious change held back: it removes more than half of the Services; it applies if it stands",
                           metadata: ["source": "\(name)", "services": "\(services.handedOut) → \(services.now)",
                                      "after": "\(Self.dropHoldTime)"])
            watcher?.wake(at: now + Self.dropHoldTime)
            return nil
        }
        return handOut()
    }

    private func heldChangeIfDue(now: ContinuousClock.Instant) -> Result<ClusterChanges, LoadError>? {
        guard let held else { return nil }
        guard now - held >= Self.dropHoldTime else {
            watcher?.wake(at: held + Self.dropHoldTime)
            return nil
        }
        self.held = nil
        logger.warning("held change stood; applying it", metadata: ["source": "\(name)", "services": "\(manifests.serviceCounts.now)"])
        return handOut()
    }

    /// The changes since the last answer; the first answer names every object, even if there are none.
    private func handOut() -> Result<ClusterChanges, LoadError>? {
        let changes = manifests.handOut()
        if handedOutOnce, changes.isEmpty { return nil }
        handedOutOnce = true
        return .success(changes)
    }
}

/// The wake closure, set from one thread and called from another.
final class WakeSlot: @unchecked Sendable {
    private let lock = NSLock()
    private var wake: (@Sendable () -> Void)?

    func set(_ wake: @escaping @Sendable () -> Void) { lock.withLock { self.wake = wake } }

    func callAsFunction() { lock.withLock { wake }?() }
}

/// One read and parse of some manifest files, on a thread of its own or in place.
private final class Reading: @unchecked Sendable {
    struct Outcome: Sendable {
        /// The files read, as they looked when the read began.
        var files: [(path: String, look: ManifestLook)]
        /// What each holds; none for a file gone.
        var contents: [String: ManifestFileContent]
        /// How that differs from what each held before.
        var deltas: [String: ManifestDelta]
        /// Files read as whole that have had an event since: not known to be whole when read.
        var notWhole: Set<String>
        var parsed: Int
    }

    private let files: [(path: String, look: ManifestLook)]
    /// The source's path: that one missing is a problem, a file of a directory missing is not.
    private let root: String
    /// What the files held when last read.
    private let before: [String: ManifestFileContent]
    /// The files read because they are whole, each with the event that left it so.
    private let whole: [String: UInt64]
    private let watcher: ManifestWatcher?
    private let lock = NSCondition()
    private var result: Outcome?

    init(files: [(path: String, look: ManifestLook)], root: String, before: [String: ManifestFileContent],
         whole: [String: UInt64], watcher: ManifestWatcher?) {
        self.files = files
        self.root = root
        self.before = before
        self.whole = whole
        self.watcher = watcher
    }

    var outcome: Outcome? { lock.withLock { result } }

    /// Reads on a thread of its own, and calls `wake` when done.
    func start(then wake: WakeSlot) {
        let thread = Thread { [self] in
            run()
            wake()
        }
        thread.name = "kipvs-manifests"
        thread.start()
    }

    func run() {
        var contents: [String: ManifestFileContent] = [:]
        var deltas: [String: ManifestDelta] = [:]
        var parsed = 0
        for (file, look) in files {
            if case .file = look { parsed += 1 }
            let content = ManifestFileContent.read(file, look: look, isRoot: file == root)
            contents[file] = content
            deltas[file] = ManifestDelta(from: before[file], to: content)
        }
        // Asked after the read: an event of any change made while it ran is among those seen.
        let stillWhole = whole.isEmpty ? [] : watcher?.stillWhole(whole) ?? []
        let notWhole = Set(whole.keys).subtracting(stillWhole)
        lock.withLock {
            result = Outcome(files: files, contents: contents, deltas: deltas, notWhole: notWhole, parsed: parsed)
            lock.broadcast()
        }
    }

    func wait() {
        lock.withLock {
            while result == nil { lock.wait() }
        }
    }
}
