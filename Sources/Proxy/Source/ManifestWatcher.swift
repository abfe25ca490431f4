import Foundation
import Logging
import Netlink

/// Tells a file source which of its paths may have changed, and wakes the source's reader: from
/// inotify events, on a thread of its own, or, where inotify is unavailable, from a look at every
/// file each second. It also wakes the source at the deadlines the source asks for (a file
/// settled, a held change due).
///
/// What is watched: the source's directory (its files by name), the directory that holds the
/// source's path (the path replaced, renamed or removed), and the directory of each symbolic
/// link's target. A mounted ConfigMap swaps its `..data` link to change every file at once: that
/// name, in either directory, means every file may have changed.
///
/// It also keeps, for each file, its last event, numbered: a file whose last event is a close
/// after writing or a rename into place is whole (see `FileSource`). Writes are watched too, so
/// that a write after the close says the file is no longer whole, and so that a writer that
/// keeps its file open is seen at all.
final class ManifestWatcher: @unchecked Sendable {
    /// How often every file is looked at when inotify is unavailable.
    static let scanInterval: Duration = .seconds(1)
    /// The longest wait when there is no pipe to be woken through: stops and deadlines are seen this late.
    private static let unwokenWait: Duration = .milliseconds(100)
    private static let mask: LibC.InotifyMask = [
        .closeWrite, .movedTo, .movedFrom, .create, .delete, .attributes, .modify, .deleteSelf, .moveSelf, .onlyDirectory,
    ]
    /// The events after which a file is whole: closed after writing, or renamed into place.
    private static let leavesWhole: LibC.InotifyMask = [.closeWrite, .movedTo]
    /// ConfigMap volumes point every file through this link and swap it on an update.
    static let configMapData = "..data"

    private let scanner: ManifestScanner
    private let wake: WakeSlot
    private let logger: Logger

    // Shared with the source; every access holds `lock` (hence unchecked Sendable).
    private let lock = NSCondition()
    private var changed: Set<String> = []
    private var everything = true
    /// Each file's last event, by its number in `eventCount`, and whether it left the file whole.
    /// Forgotten when events were lost, and for a file gone.
    private var lastEvents: [String: (number: UInt64, whole: Bool)] = [:]
    private var eventCount: UInt64 = 0
    /// Catch-ups asked for and done: one done has read every event queued before it was asked.
    private var catchUpsAsked: UInt64 = 0
    private var catchUpsDone: UInt64 = 0
    /// The thread has ended: no more catch-ups.
    private var ended = false
    private var deadline: ContinuousClock.Instant?
    /// Files that are symbolic links, and where they point.
    private var links: [String: String] = [:]
    private var replanNeeded = false
    private var stopped = false
    private var watching = false

    // The watcher thread's own (and `init`'s, before the thread starts).
    private var inotify: Int32?
    private let pipe: (read: Int32, write: Int32)?
    private var watches: [String: Int32] = [:]
    private var rules: [Int32: Rule] = [:]
    private var scanned: [String: ManifestLook] = [:]
    private var nextScan = ContinuousClock.now

    /// What the events of one watched directory mean.
    private struct Rule {
        /// Its manifest files are the source's files (it is the source's directory).
        var entries = false
        /// Names that mean every file may have changed.
        var everything: Set<String> = []
        /// Names that are the targets of these files' links.
        var paths: [String: Set<String>] = [:]

        mutating func merge(_ other: Rule) {
            entries = entries || other.entries
            everything.formUnion(other.everything)
            paths.merge(other.paths) { $0.union($1) }
        }
    }

    /// Starts watching `scanner`'s path; `inotify: false` looks every second instead, as when
    /// inotify is unavailable.
    init(scanner: ManifestScanner, wake: WakeSlot, logger: Logger, inotify useInotify: Bool = true) {
        self.scanner = scanner
        self.wake = wake
        self.logger = logger
        do {
            pipe = try LibC.makePipe()
        } catch {
            pipe = nil
            logger.warning("cannot make the file watcher's wake-up pipe; it notices deadlines up to 100 ms late",
                           metadata: ["path": "\(scanner.root)", "error": "\(error)"])
        }
        if useInotify {
            do {
                inotify = try LibC.inotifyInit()
                watching = true
                // Watched before the first look, so that no change falls between the two.
                replan()
            } catch {
                logger.warning("inotify unavailable; looking at the manifest files every second",
                               metadata: ["path": "\(scanner.root)", "error": "\(error)"])
            }
        }
        if inotify == nil { fallBackToScanning() }
        let thread = Thread { [self] in run() }
        thread.name = "kipvs-watch"
        thread.start()
    }

    /// Whether inotify events drive it (false: it looks every second).
    var usesInotify: Bool { lock.withLock { watching } }

    /// The paths that may have changed since the last call, or `everything` when any may have;
    /// and of those paths, the ones whose last event left them whole, with that event's number.
    func takeChanges() -> (everything: Bool, paths: Set<String>, whole: [String: UInt64]) {
        lock.withLock {
            defer {
                changed = []
                everything = false
            }
            var whole: [String: UInt64] = [:]
            for path in changed {
                if let last = lastEvents[path], last.whole { whole[path] = last.number }
            }
            return (everything, changed, whole)
        }
    }

    /// Of `marks` (files, each with the event after which it was whole), those that have had no
    /// event since: the events queued by the time of the call are read first, so a change made
    /// before it counts. None when events cannot be trusted (inotify given up, the thread ended).
    /// Blocks until the watcher's thread has read them: never call it from the wake closure.
    func stillWhole(_ marks: [String: UInt64]) -> Set<String> {
        let ticket: UInt64? = lock.withLock {
            guard watching, !ended else { return nil }
            catchUpsAsked += 1
            return catchUpsAsked
        }
        guard let ticket else { return [] }
        poke()
        return lock.withLock {
            while catchUpsDone < ticket, watching, !ended { lock.wait() }
            guard catchUpsDone >= ticket, watching else { return [] }
            return Set(marks.compactMap { path, number in lastEvents[path]?.number == number ? path : nil })
        }
    }

    /// Wakes the source at `deadline` (or earlier, for another reason).
    func wake(at deadline: ContinuousClock.Instant) {
        let sooner = lock.withLock {
            guard self.deadline.map({ deadline < $0 }) ?? true else { return false }
            self.deadline = deadline
            return true
        }
        if sooner { poke() }
    }

    /// `file` is a symbolic link to `target` (nil: it is not, or no longer): changes of the target are its changes.
    func follow(_ file: String, to target: String?) {
        let new = lock.withLock {
            guard links[file] != target else { return false }
            links[file] = target
            replanNeeded = true
            return true
        }
        if new { poke() }
    }

    /// Ends the thread; it closes what it opened.
    func stop() {
        lock.withLock { stopped = true }
        poke()
    }

    private func poke() {
        guard let pipe else { return }
        do {
            try LibC.poke(pipe.write)
        } catch {
            logger.error("cannot wake the file watcher", metadata: ["path": "\(scanner.root)", "error": "\(error)"])
        }
    }

    // MARK: - The thread

    private func run() {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let (stop, due, replanNow, catchUp) = lock.withLock {
                defer { replanNeeded = false }
                return (stopped, deadline, replanNeeded, catchUpsAsked > catchUpsDone ? catchUpsAsked : nil)
            }
            if stop { break }
            if replanNow, inotify != nil { replan() }
            if let catchUp {
                // inotify queues an event within the call that changed the file: reading the queue
                // to its end now sees every change made before the catch-up was asked.
                readEvents(buffer: &buffer)
                lock.withLock {
                    catchUpsDone = catchUp
                    lock.broadcast()
                }
            }
            let now = ContinuousClock.now
            if let due, due <= now {
                lock.withLock { if deadline == due { deadline = nil } }
                wake()
                continue
            }
            if inotify == nil, nextScan <= now {
                scan()
                continue
            }
            var until = due
            if inotify == nil { until = min(until ?? nextScan, nextScan) }
            wait(until: until, buffer: &buffer)
        }
        close()
        lock.withLock {
            ended = true
            lock.broadcast()
        }
    }

    /// Sleeps until an event, a poke or `until`; takes in the events.
    private func wait(until: ContinuousClock.Instant?, buffer: inout [UInt8]) {
        var timeout = until.map { $0 - .now }
        if pipe == nil { timeout = min(timeout ?? Self.unwokenWait, Self.unwokenWait) }
        let descriptors = [inotify, pipe?.read].compactMap { $0 }
        guard !descriptors.isEmpty else {
            let (seconds, attoseconds) = max(timeout ?? Self.unwokenWait, .zero).components
            Thread.sleep(forTimeInterval: Double(seconds) + Double(attoseconds) / 1e18)
            return
        }
        let ready: [Bool]
        do {
            ready = try LibC.waitForInput(descriptors, timeout: timeout)
        } catch {
            logger.error("waiting for manifest file events failed", metadata: ["path": "\(scanner.root)", "error": "\(error)"])
            Thread.sleep(forTimeInterval: 0.1)  // not a spin on a failure that stays
            return
        }
        for (descriptor, isReady) in zip(descriptors, ready) where isReady {
            if descriptor == inotify {
                readEvents(buffer: &buffer)
            } else {
                do {
                    try LibC.drain(descriptor)
                } catch {
                    logger.error("cannot read the file watcher's wake-up pipe", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    private func readEvents(buffer: inout [UInt8]) {
        guard let inotify else { return }
        var all = false
        var paths = Set<String>()
        var replanAfter = false
        // The files each event names, in order, and whether it left them whole (nil: gone).
        var noted: [(path: String, whole: Bool?)] = []
        var lost = false
        while true {
            let events: [LibC.InotifyEvent]
            do {
                events = try LibC.readInotifyEvents(inotify, buffer: &buffer)
            } catch {
                logger.error("reading inotify events failed; looking at the manifest files every second instead",
                             metadata: ["path": "\(scanner.root)", "error": "\(error)"])
                fallBackToScanning()
                return
            }
            if events.isEmpty { break }
            for event in events {
                if event.mask.contains(.queueOverflow) {
                    all = true  // events were lost
                    lost = true
                    continue
                }
                guard let rule = rules[event.watch] else { continue }  // a watch already given up
                if event.mask.contains(.ignored) {
                    // The directory is gone (or unmounted): its watch with it.
                    rules[event.watch] = nil
                    watches = watches.filter { $0.value != event.watch }
                    all = true
                    lost = true  // what became of its files is not told
                    replanAfter = true
                    continue
                }
                if event.name.isEmpty {
                    if !event.mask.isDisjoint(with: [.deleteSelf, .moveSelf]) {
                        all = true
                        replanAfter = true
                    }
                    continue
                }
                var named = rule.paths[event.name] ?? []
                if rule.entries, ManifestLoader.isManifestName(event.name) { named.insert(scanner.path(of: event.name)) }
                let gone = !event.mask.isDisjoint(with: [.delete, .movedFrom])
                let whole = !event.mask.isDisjoint(with: Self.leavesWhole)
                noted += named.map { ($0, gone ? nil : whole) }
                // A write to the source's own path is no replacement of it: nothing to watch anew.
                if rule.everything.contains(event.name), !event.mask.contains(.modify) {
                    all = true
                    replanAfter = true
                }
                paths.formUnion(named)
            }
        }
        guard all || !paths.isEmpty else { return }
        lock.withLock {
            for (path, whole) in noted {
                eventCount += 1
                lastEvents[path] = whole.map { (number: eventCount, whole: $0) }
            }
            if lost { lastEvents = [:] }
            changed.formUnion(paths)
            everything = everything || all
            replanNeeded = replanNeeded || replanAfter
        }
        wake()
    }

    /// Watches what the path stands for now: the watches it needs are added, the others removed.
    private func replan() {
        guard let inotify else { return }
        var added: [String: Int32] = [:]
        var newRules: [Int32: Rule] = [:]
        let (parent, plan) = plan(links: lock.withLock { links })
        for (directory, rule) in plan {
            let watch: Int32
            do {
                watch = try LibC.addWatch(inotify, path: directory, mask: Self.mask)
            } catch where error.errno == .noSuchFileOrDirectory || error.errno == .notDirectory {
                // Not there (yet): the watch on the directory above sees it come, and a link to it leads nowhere.
                continue
            } catch {
                logger.warning("cannot watch a manifest directory; looking at the files every second instead",
                               metadata: ["path": "\(scanner.root)", "error": "\(error)"])
                fallBackToScanning()
                return
            }
            added[directory] = watch
            newRules[watch, default: Rule()].merge(rule)
        }
        for watch in Set(watches.values).subtracting(newRules.keys) {
            do {
                try LibC.removeWatch(inotify, watch)
            } catch where error.errno == .invalidArgument {
                // Already gone with its directory; its IN_IGNORED is on the way.
            } catch {
                logger.warning("cannot remove a watch on a manifest directory", metadata: ["error": "\(error)"])
            }
        }
        watches = added
        rules = newRules
        if added[parent] == nil {
            // Nothing would see the path come back.
            logger.warning("the directory that holds the manifests is missing; looking at the files every second",
                           metadata: ["path": "\(scanner.root)", "directory": "\(parent)"])
            fallBackToScanning()
        }
    }

    /// The directory that holds the source's path; the directories to watch, and what their events mean.
    private func plan(links: [String: String]) -> (parent: String, [String: Rule]) {
        let root = scanner.directory as NSString
        let parent = root.deletingLastPathComponent
        var plan: [String: Rule] = [:]
        plan[parent, default: Rule()].everything.formUnion([root.lastPathComponent, Self.configMapData])
        // The source's path is a file of its own there: whether it is whole is told by its name's events.
        plan[parent, default: Rule()].paths[root.lastPathComponent, default: []].insert(scanner.root)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: scanner.directory, isDirectory: &isDirectory), isDirectory.boolValue {
            plan[scanner.directory, default: Rule()].entries = true
            plan[scanner.directory, default: Rule()].everything.insert(Self.configMapData)
        }
        for (file, target) in links {
            let target = target as NSString
            plan[target.deletingLastPathComponent, default: Rule()].paths[target.lastPathComponent, default: []].insert(file)
        }
        return (parent, plan)
    }

    /// Gives inotify up for a look at every file each second.
    private func fallBackToScanning() {
        if let inotify {
            closeDescriptor(inotify, "inotify")
            self.inotify = nil
        }
        watches = [:]
        rules = [:]
        scanned = scanner.lookAtEverything(previous: [:])
        nextScan = .now + Self.scanInterval
        lock.withLock {
            watching = false
            everything = true
            lastEvents = [:]
            lock.broadcast()  // a catch-up waiting is over: events are no longer read
        }
        wake()
    }

    private func scan() {
        let looks = scanner.lookAtEverything(previous: scanned)
        var paths = Set(looks.compactMap { path, look in scanned[path] == look ? nil : path })
        paths.formUnion(scanned.keys.filter { looks[$0] == nil })
        scanned = looks
        nextScan = .now + Self.scanInterval
        guard !paths.isEmpty else { return }
        lock.withLock { changed.formUnion(paths) }
        wake()
    }

    private func close() {
        if let inotify { closeDescriptor(inotify, "inotify") }
        if let pipe {
            closeDescriptor(pipe.read, "wake-up pipe")
            closeDescriptor(pipe.write, "wake-up pipe")
        }
    }

    private func closeDescriptor(_ descriptor: Int32, _ name: String) {
        do {
            try LibC.closeDescriptor(descriptor, name: name)
        } catch {
            logger.warning("cannot close the file watcher's descriptor", metadata: ["error": "\(error)"])
        }
    }
}
