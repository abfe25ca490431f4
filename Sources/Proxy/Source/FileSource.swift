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

/// Services and EndpointSlices from a manifest file or directory, re-read when anything in it
/// changes. A file is read half-written more often than not (`kubectl get -o yaml > f` truncates
/// first, an editor writes in pieces), so a change is taken with care:
///
/// - only once the files have stopped changing: the same size, modification time and inode in
///   two looks at least `settleTime` apart (a rename into place changes the inode);
/// - a file with no object in it (empty, or truncated to nothing) never replaces the last good
///   state: it is reported and the last good state stays;
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

    public let path: String
    private let clock: SourceClock
    private let logger: Logger
    /// Whether reads run on a thread of their own (tests may read in place).
    let readsInBackground: Bool

    /// The files as last seen, and since when they have looked so.
    private var lastLook: (files: Fingerprint, since: ContinuousClock.Instant)?
    /// The files whose content was last read (and used, refused or held).
    private var read: Fingerprint?
    private var reading: Reading?
    /// The last state handed out.
    private var good: ClusterState?
    /// A large drop waiting to stand long enough.
    private var held: (state: ClusterState, files: Fingerprint, since: ContinuousClock.Instant)?
    private var answered = false
    /// The state the last answer brought the caller to.
    private var handedOut: ClusterState?
    private let wake = WakeSlot()

    public init(path: String, clock: SourceClock = .system, logger: Logger = Logger(label: "kipvs")) {
        self.path = path
        self.clock = clock
        self.logger = logger
        readsInBackground = true
    }

    init(path: String, clock: SourceClock, logger: Logger, readsInBackground: Bool) {
        self.path = path
        self.clock = clock
        self.logger = logger
        self.readsInBackground = readsInBackground
    }

    public var name: String { "file:\(path)" }

    public func setWake(_ wake: @escaping @Sendable () -> Void) { self.wake.set(wake) }

    /// nil when nothing changed since the last call (or a change is not yet safe to take);
    /// otherwise the objects that changed or why the files could not be used.
    public func poll() -> Result<ClusterChanges, LoadError>? {
        switch pollState() {
        case nil: return nil
        case .failure(let error): return .failure(error)
        case .success(let state):
            let changes = handedOut.map { ClusterChanges.between($0, state) } ?? ClusterChanges(adding: state)
            handedOut = state
            return .success(changes)
        }
    }

    private func pollState() -> Result<ClusterState, LoadError>? {
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

    private func step(waitingForRead: Bool) -> Result<ClusterState, LoadError>? {
        if let reading {
            if waitingForRead { reading.wait() }
            guard let outcome = reading.outcome else { return nil }
            self.reading = nil
            return take(outcome, of: reading.files)
        }
        let now = clock.now()
        let files = Fingerprint(path: path)
        guard let last = lastLook, last.files == files else {
            lastLook = (files, now)
            return nil
        }
        if files == read { return heldDropIfDue(now: now) }
        let stood = now - last.since
        guard stood >= Self.settleTime else { return nil }
        if files.mayEndMidLine, stood < Self.unfinishedLineTime { return nil }
        let reading = Reading(files: files, paths: [path])
        if readsInBackground && !waitingForRead {
            reading.start()
            self.reading = reading
            return nil
        }
        reading.run()
        return take(reading.outcome!, of: files)
    }

    /// Uses what a read found, unless the files changed while it ran.
    private func take(_ collector: ManifestCollector, of files: Fingerprint) -> Result<ClusterState, LoadError>? {
        let now = clock.now()
        guard Fingerprint(path: path) == files else {
            logger.debug("manifests changed while being read; reading again once they settle", metadata: ["source": "\(name)"])
            lastLook = nil
            return nil
        }
        read = files
        held = nil
        let state: ClusterState
        do {
            state = try collector.result()
        } catch {
            return .failure(error)
        }
        if !collector.emptySources.isEmpty {
            return .failure(LoadError(problems: collector.emptySources.map {
                LoadError.Problem(source: $0, message: "has no objects (empty, or cut short while being written); the last good state stays")
            }))
        }
        if let good, state == good { return nil }
        if let good, Self.isLargeDrop(from: good, to: state) {
            held = (state, files, now)
            logger.warning("suspicious change held back: it removes more than half of the Services; it applies if it stands",
                           metadata: ["source": "\(name)", "services": "\(good.services.count) → \(state.services.count)",
                                      "after": "\(Self.dropHoldTime)"])
            return nil
        }
        good = state
        return .success(state)
    }

    private func heldDropIfDue(now: ContinuousClock.Instant) -> Result<ClusterState, LoadError>? {
        guard let held, now - held.since >= Self.dropHoldTime else { return nil }
        self.held = nil
        logger.warning("held change stood; applying it", metadata: ["source": "\(name)", "services": "\(held.state.services.count)"])
        good = held.state
        return .success(held.state)
    }

    /// More than half of the Services gone at once.
    static func isLargeDrop(from old: ClusterState, to new: ClusterState) -> Bool {
        let kept = Set(new.services.map(\.metadata.qualifiedName))
        let removed = old.services.count { !kept.contains($0.metadata.qualifiedName) }
        return removed * 2 > old.services.count
    }
}

/// Name, size, modification time and inode of every manifest file a path stands for.
struct Fingerprint: Equatable {
    struct File: Equatable {
        var path: String
        var size: Int
        var modified: Date?
        var inode: Int
        /// YAML whose last byte is not a newline.
        var endsMidLine: Bool
    }

    /// nil when the path itself cannot be listed (it is missing, or a directory cannot be read).
    var files: [File]?

    init(path: String) {
        guard let paths = try? ManifestLoader.manifestFiles(at: path) else {
            files = nil  // the load reports why
            return
        }
        files = paths.map(Self.file)
    }

    var mayEndMidLine: Bool { files?.contains(where: \.endsMidLine) ?? false }

    private static func file(_ path: String) -> File {
        let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        // Unreadable attributes read as zero: the load reports the file.
        let attributes = (try? FileManager.default.attributesOfItem(atPath: resolved)) ?? [:]
        let size = (attributes[.size] as? NSNumber)?.intValue ?? -1
        var file = File(path: path, size: size, modified: attributes[.modificationDate] as? Date,
                        inode: (attributes[.systemFileNumber] as? NSNumber)?.intValue ?? 0, endsMidLine: false)
        if size > 0, !path.lowercased().hasSuffix(".json"), let handle = FileHandle(forReadingAtPath: resolved) {
            // Looked at for YAML only: JSON cut short does not parse. A last byte that cannot be
            // read counts as a newline: the read that follows reports the file.
            if (try? handle.seek(toOffset: UInt64(size - 1))) != nil, let last = try? handle.read(upToCount: 1) {
                file.endsMidLine = last != Data([UInt8(ascii: "\n")])
            }
            try? handle.close()  // read-only: closing cannot lose anything
        }
        return file
    }
}

/// The wake closure, set from one thread and called from another.
final class WakeSlot: @unchecked Sendable {
    private let lock = NSLock()
    private var wake: (@Sendable () -> Void)?

    func set(_ wake: @escaping @Sendable () -> Void) { lock.withLock { self.wake = wake } }

    func callAsFunction() { lock.withLock { wake }?() }
}

/// One read and parse of the manifests, on a thread of its own or in place.
private final class Reading: @unchecked Sendable {
    let files: Fingerprint
    private let paths: [String]
    private let lock = NSCondition()
    private var result: ManifestCollector?

    init(files: Fingerprint, paths: [String]) {
        self.files = files
        self.paths = paths
    }

    var outcome: ManifestCollector? { lock.withLock { result } }

    func start() {
        let thread = Thread { [self] in run() }
        thread.name = "kipvs-manifests"
        thread.start()
    }

    func run() {
        let collector = ManifestLoader.collect(paths: paths)
        lock.withLock {
            result = collector
            lock.broadcast()
        }
    }

    func wait() {
        lock.withLock {
            while result == nil { lock.wait() }
        }
    }
}
