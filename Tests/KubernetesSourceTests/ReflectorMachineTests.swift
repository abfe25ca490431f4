import Testing
@testable import KubernetesSource

/// Every fault the reflector meets, without a network: inputs in, the next request out.
@Suite struct ReflectorMachineTests {
    typealias Machine = ReflectorMachine<String>

    /// A machine with a fixed jitter, after a completed single-page list at version 10.
    func synced(random: Double = 0.5, items: [String: String] = ["default/a": "a1"]) -> Machine {
        var machine = Machine(random: { random })
        _ = machine.start()
        _ = machine.listed(ListPage(items: items, resourceVersion: "10"))
        return machine
    }

    let t0 = ContinuousClock.now

    @Test func listsThenWatchesFromTheListVersion() {
        var machine = Machine()
        #expect(machine.start() == .init(.list(continueToken: nil)))
        #expect(!machine.hasSynced)
        let next = machine.listed(ListPage(items: ["default/a": "a1"], resourceVersion: "10"))
        #expect(next == .init(.watch(resourceVersion: "10")))
        #expect(machine.hasSynced)
        #expect(machine.items == ["default/a": "a1"])
    }

    @Test func paginatedListCompletesOnlyAfterTheLastPage() {
        var machine = Machine()
        _ = machine.start()
        let second = machine.listed(ListPage(items: ["default/a": "a1"], resourceVersion: "10", continueToken: "t1"))
        #expect(second == .init(.list(continueToken: "t1")))
        #expect(!machine.hasSynced)
        #expect(machine.items.isEmpty)
        let done = machine.listed(ListPage(items: ["default/b": "b1"], resourceVersion: "10"))
        #expect(done == .init(.watch(resourceVersion: "10")))
        #expect(machine.items == ["default/a": "a1", "default/b": "b1"])
    }

    @Test func failedPageRestartsTheListAndKeepsTheLastItems() {
        var machine = synced()
        _ = machine.received(.error(code: 410))
        _ = machine.listed(ListPage(items: ["default/x": "x1"], resourceVersion: "20", continueToken: "t"))
        let next = machine.listFailed(.status(410))
        #expect(next.request == .list(continueToken: nil))
        #expect(next.restart == .expired)
        #expect(machine.items == ["default/a": "a1"])
        // The aborted pages are not mixed into the next list.
        _ = machine.listed(ListPage(items: ["default/y": "y1"], resourceVersion: "21"))
        #expect(machine.items == ["default/y": "y1"])
    }

    /// An update that cannot be decoded keeps the last good version; a new object that cannot be is not added.
    @Test func undecodableEventsKeepTheLastGoodVersion() {
        var machine = synced()
        let revision = machine.revision
        #expect(machine.received(.undecodable(key: "default/a", resourceVersion: "11")) == nil)
        #expect(machine.received(.undecodable(key: "default/new", resourceVersion: "12")) == nil)
        #expect(machine.items == ["default/a": "a1"])
        #expect(machine.revision == revision)
        #expect(machine.resourceVersion == "12")
    }

    /// So does a relist, across pages, for every object it cannot decode.
    @Test func undecodableListItemsKeepTheLastGoodVersion() {
        var machine = synced(items: ["default/a": "a1", "default/b": "b1", "default/c": "c1"])
        _ = machine.received(.error(code: 410))
        _ = machine.listed(ListPage(items: ["default/b": "b2"], resourceVersion: "20", continueToken: "t", undecodable: ["default/a"]))
        _ = machine.listed(ListPage(items: [:], resourceVersion: "20", undecodable: ["default/new"]))
        #expect(machine.items == ["default/a": "a1", "default/b": "b2"])
    }

    @Test func eventsUpdateItemsAndAdvanceTheVersion() {
        var machine = synced()
        let revision = machine.revision
        #expect(machine.received(.added(key: "default/b", object: "b1", resourceVersion: "11")) == nil)
        #expect(machine.received(.modified(key: "default/a", object: "a2", resourceVersion: "12")) == nil)
        #expect(machine.received(.deleted(key: "default/b", resourceVersion: "13")) == nil)
        #expect(machine.items == ["default/a": "a2"])
        #expect(machine.resourceVersion == "13")
        #expect(machine.revision == revision + 3)
    }

    @Test func objectsNotForThisProxyAreAbsent() {
        var machine = synced()
        _ = machine.received(.modified(key: "default/a", object: nil, resourceVersion: "11"))
        #expect(machine.items.isEmpty)
    }

    @Test func unchangedObjectsDoNotCountAsChanges() {
        var machine = synced()
        let revision = machine.revision
        _ = machine.received(.modified(key: "default/a", object: "a1", resourceVersion: "11"))
        #expect(machine.revision == revision)
        #expect(machine.resourceVersion == "11")
    }

    @Test func bookmarksAdvanceTheVersionOnly() {
        var machine = synced()
        let revision = machine.revision
        #expect(machine.received(.bookmark(resourceVersion: "42")) == nil)
        #expect(machine.resourceVersion == "42")
        #expect(machine.revision == revision)
        // A later drop resumes from the bookmark.
        #expect(machine.watchEnded(.failed(.transport), at: t0).request == .watch(resourceVersion: "42"))
    }

    @Test func errorEventWith410Relists() {
        var machine = synced()
        let next = machine.received(.error(code: 410))
        #expect(next?.request == .list(continueToken: nil))
        #expect(next?.restart == .expired)
        #expect(machine.items == ["default/a": "a1"])
        #expect(machine.hasSynced)
    }

    @Test func status410OnTheWatchRelists() {
        var machine = synced()
        machine.watchStarted(at: t0)
        let next = machine.watchEnded(.failed(.status(410)), at: t0)
        #expect(next.request == .list(continueToken: nil))
        #expect(next.restart == .expired)
    }

    @Test func otherErrorEventsRewatchFromTheLastVersionAfterABackoff() {
        var machine = synced()
        _ = machine.received(.added(key: "default/b", object: "b1", resourceVersion: "11"))
        let next = machine.received(.error(code: 500))
        #expect(next?.request == .watch(resourceVersion: "11"))
        #expect(next?.restart == .error)
        #expect(next.map { $0.delay > .zero } == true)
    }

    @Test(arguments: [
        (WatchEnd.failed(.transport), RestartReason.dropped, true),
        (.failed(.status(500)), .error, true),
        (.failed(.status(429)), .error, true),
        (.failed(.malformed), .error, true),
        (.idle, .idle, false),
    ])
    func faultsRewatchFromTheLastVersion(end: WatchEnd, reason: RestartReason, backsOff: Bool) {
        var machine = synced()
        machine.watchStarted(at: t0)
        _ = machine.received(.modified(key: "default/a", object: "a2", resourceVersion: "15"))
        let next = machine.watchEnded(end, at: t0 + .seconds(60))
        #expect(next.request == .watch(resourceVersion: "15"))
        #expect(next.restart == reason)
        #expect((next.delay > .zero) == backsOff)
        #expect(machine.items == ["default/a": "a2"])
    }

    @Test func aWatchClosedNormallyIsResumedAtOnce() {
        var machine = synced()
        machine.watchStarted(at: t0)
        let next = machine.watchEnded(.closed, at: t0 + .seconds(300))
        #expect(next == .init(.watch(resourceVersion: "10"), restart: .closed))
    }

    @Test func aWatchClosedAtOnceWithNothingDeliveredBacksOff() {
        var machine = synced()
        machine.watchStarted(at: t0)
        let next = machine.watchEnded(.closed, at: t0 + .milliseconds(10))
        #expect(next.request == .watch(resourceVersion: "10"))
        #expect(next.delay > .zero)
    }

    @Test func backoffGrowsIsBoundedAndResetsOnSuccess() {
        var machine = synced(random: 0)
        var delays: [Duration] = []
        for _ in 0..<12 {
            machine.watchStarted(at: t0)
            delays.append(machine.watchEnded(.failed(.transport), at: t0).delay)
        }
        #expect(delays[0] == .milliseconds(800))
        #expect(delays[1] == .milliseconds(1600))
        #expect(zip(delays, delays.dropFirst()).allSatisfy { $0 <= $1 })
        #expect(delays.allSatisfy { $0 <= .seconds(30) })
        // An event proves the watch works again.
        _ = machine.received(.bookmark(resourceVersion: "11"))
        machine.watchStarted(at: t0)
        #expect(machine.watchEnded(.failed(.transport), at: t0).delay == .milliseconds(800))
    }

    @Test func aCompletedListResetsTheBackoff() {
        var machine = synced(random: 0)
        for _ in 0..<5 { _ = machine.listFailed(.transport) }
        #expect(machine.backoff.failures == 5)
        _ = machine.listed(ListPage(items: [:], resourceVersion: "30"))
        #expect(machine.backoff.failures == 0)
    }
}

@Suite struct BackoffTests {
    @Test func jitterStretchesEachDelayWithinTheBound() {
        for failures in 1...20 {
            var low = Backoff(), high = Backoff()
            var lowDelay = Duration.zero, highDelay = Duration.zero
            for _ in 0..<failures {
                lowDelay = low.next(random: 0)
                highDelay = high.next(random: 0.999)
            }
            #expect(lowDelay < highDelay)
            #expect(highDelay <= .seconds(30))
            #expect(lowDelay >= .milliseconds(800))
        }
    }

    @Test func theBaseDoublesUpToItsCap() {
        let backoff = Backoff()
        #expect(backoff.base(afterFailures: 1) == .milliseconds(800))
        #expect(backoff.base(afterFailures: 2) == .milliseconds(1600))
        #expect(backoff.base(afterFailures: 3) == .milliseconds(3200))
        let cap = backoff.base(afterFailures: 100)
        #expect(cap > .milliseconds(19_999) && cap < .milliseconds(20_001))
    }

    @Test func differentDrawsGiveDifferentDelays() {
        let delays = Set([0.1, 0.4, 0.7].map { random in
            var backoff = Backoff()
            return backoff.next(random: random)
        })
        #expect(delays.count == 3)
    }
}
