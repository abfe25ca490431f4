import Testing
@testable import Proxy

/// One sync a driven pacer asked for: when, as an offset from the start, and of which kind.
private struct Sync: Equatable, CustomStringConvertible {
    var at: Duration
    var resync: Bool
    var description: String { "\(at)\(resync ? " resync" : "")" }
}

@Suite struct SyncPacerTests {
    let t0 = ContinuousClock.now

    func ms(_ milliseconds: Int) -> ContinuousClock.Instant { t0 + .milliseconds(milliseconds) }

    /// Runs `pacer` as the sync loop does, from `t0` to `end`: changes arrive at the given offsets,
    /// every sync takes `syncTakes`, and between syncs the loop sleeps until the pacer's deadline or
    /// the next change. Returns the syncs it started.
    fileprivate func drive(_ pacer: inout SyncPacer, changes: [Duration] = [], until end: Duration,
               syncTakes: Duration = .zero) -> [Sync] {
        let arrivals = changes.sorted().map { t0 + $0 }
        var arrived = 0
        var now = t0
        var syncs: [Sync] = []
        for _ in 0..<100_000 {
            while arrived < arrivals.count, arrivals[arrived] <= now {
                pacer.changed(at: arrivals[arrived])
                arrived += 1
            }
            switch pacer.next(at: now) {
            case .sync(let resync):
                pacer.started(resync: resync, at: now)
                syncs.append(Sync(at: now - t0, resync: resync))
                now += syncTakes
            case .wait(let deadline):
                let wake = [deadline, arrived < arrivals.count ? arrivals[arrived] : nil].compactMap { $0 }.min()
                guard let wake, wake <= t0 + end else { return syncs }
                // A deadline that is not ahead would spin the loop (changes up to now are in).
                guard wake > now else {
                    Issue.record("deadline \(wake - t0) is not after now \(now - t0)")
                    return syncs
                }
                now = wake
            }
        }
        Issue.record("the pacer never let the loop sleep")
        return syncs
    }

    // MARK: bounded_frequency_runner_test.go, with this pacer's two kinds of sync

    /// Test_BoundedFrequencyRunnerNoBurst: one sync per minSyncPeriod, requests in between coalesce.
    /// The first sync is a resync here, and the periodic one counts from it.
    @Test func noBurst() {
        var pacer = SyncPacer(minSyncPeriod: .seconds(1), syncPeriod: .seconds(10), burst: 1)
        pacer.changed(at: ms(0))
        #expect(pacer.next(at: ms(0)) == .sync(resync: true))
        pacer.started(resync: true, at: ms(0))

        pacer.changed(at: ms(500))
        #expect(pacer.next(at: ms(500)) == .wait(until: ms(1000)))  // too soon after the first
        pacer.changed(at: ms(999))
        #expect(pacer.next(at: ms(999)) == .wait(until: ms(1000)))  // still too soon
        #expect(pacer.next(at: ms(1000)) == .sync(resync: false))  // the deferred sync
        pacer.started(resync: false, at: ms(1000))

        pacer.changed(at: ms(1000))
        #expect(pacer.next(at: ms(1000)) == .wait(until: ms(2000)))  // too soon after the second
        pacer.changed(at: ms(1001))
        #expect(pacer.next(at: ms(1001)) == .wait(until: ms(2000)))
        #expect(pacer.next(at: ms(1999)) == .wait(until: ms(2000)))  // not early
        #expect(pacer.next(at: ms(2000)) == .sync(resync: false))
        pacer.started(resync: false, at: ms(2000))

        // minSyncPeriod passes with nothing queued: sleep until the resync.
        #expect(pacer.next(at: ms(3000)) == .wait(until: ms(10_000)))
        #expect(pacer.next(at: ms(10_000)) == .sync(resync: true))
        pacer.started(resync: true, at: ms(10_000))

        pacer.changed(at: ms(10_001))
        #expect(pacer.next(at: ms(10_001)) == .wait(until: ms(11_000)))  // too soon after the resync
        #expect(pacer.next(at: ms(11_000)) == .sync(resync: false))
    }

    /// Test_BoundedFrequencyRunnerBurst: two syncs at once, then one per minSyncPeriod as tokens come
    /// back. A deferred sync waits for its token: kube-proxy's timer guesses from the last run and
    /// tries again, which lands on the same instants in that test.
    @Test func burst() {
        var pacer = SyncPacer(minSyncPeriod: .seconds(1), syncPeriod: .seconds(10), burst: 2)
        pacer.changed(at: ms(0))
        #expect(pacer.next(at: ms(0)) == .sync(resync: true))
        pacer.started(resync: true, at: ms(0))
        pacer.changed(at: ms(1))
        #expect(pacer.next(at: ms(1)) == .sync(resync: false))  // the burst
        pacer.started(resync: false, at: ms(1))

        for now in [499, 500, 501] {
            pacer.changed(at: ms(now))
            #expect(pacer.next(at: ms(now)) == .wait(until: ms(1000)))
        }
        #expect(pacer.next(at: ms(1000)) == .sync(resync: false))  // one token back
        pacer.started(resync: false, at: ms(1000))

        pacer.changed(at: ms(1001))
        #expect(pacer.next(at: ms(1001)) == .wait(until: ms(2000)))
        pacer.changed(at: ms(1999))
        #expect(pacer.next(at: ms(1999)) == .wait(until: ms(2000)))
        #expect(pacer.next(at: ms(2000)) == .sync(resync: false))
        pacer.started(resync: false, at: ms(2000))

        // Two seconds later the bucket is full again: two syncs at once, the third waits.
        for _ in 0..<2 {
            pacer.changed(at: ms(4000))
            #expect(pacer.next(at: ms(4000)) == .sync(resync: false))
            pacer.started(resync: false, at: ms(4000))
        }
        pacer.changed(at: ms(4000))
        #expect(pacer.next(at: ms(4000)) == .wait(until: ms(5000)))
        #expect(pacer.next(at: ms(5000)) == .sync(resync: false))
        pacer.started(resync: false, at: ms(5000))

        #expect(pacer.next(at: ms(5000)) == .wait(until: ms(10_000)))
        #expect(pacer.next(at: ms(10_000)) == .sync(resync: true))
    }

    /// Test_BoundedFrequencyRunnerRetryAfter: a retry asked for during a sync fires by itself, and
    /// any sync that starts after it was asked for takes it. (A long syncPeriod keeps resyncs out.)
    @Test func retryAfter() {
        var pacer = SyncPacer(minSyncPeriod: .seconds(1), syncPeriod: .seconds(60), burst: 1)
        #expect(pacer.next(at: ms(0)) == .sync(resync: true))
        pacer.started(resync: true, at: ms(0))
        pacer.retry(after: .seconds(5), at: ms(0))  // asked for by the sync itself

        #expect(pacer.next(at: ms(1000)) == .wait(until: ms(5000)))  // nothing queued
        #expect(pacer.next(at: ms(5000)) == .sync(resync: false))  // the retry
        pacer.started(resync: false, at: ms(5000))

        pacer.changed(at: ms(5499))
        #expect(pacer.next(at: ms(5499)) == .wait(until: ms(6000)))  // too soon after the retry
        #expect(pacer.next(at: ms(6000)) == .sync(resync: false))
        pacer.started(resync: false, at: ms(6000))
        pacer.retry(after: .seconds(5), at: ms(6000))
        #expect(pacer.next(at: ms(7000)) == .wait(until: ms(11_000)))

        pacer.changed(at: ms(7000))
        #expect(pacer.next(at: ms(7000)) == .sync(resync: false))
        pacer.started(resync: false, at: ms(7000))
        #expect(pacer.next(at: ms(11_000)) == .wait(until: ms(60_000)))  // the retry went with that sync

        // A retry asked for from elsewhere, after a sync started, survives that sync only.
        pacer.changed(at: ms(11_000))
        #expect(pacer.next(at: ms(11_000)) == .sync(resync: false))
        pacer.started(resync: false, at: ms(11_000))
        pacer.retry(after: .seconds(5), at: ms(11_100))
        pacer.changed(at: ms(11_100))
        #expect(pacer.next(at: ms(11_100)) == .wait(until: ms(12_000)))
        #expect(pacer.next(at: ms(12_000)) == .sync(resync: false))
        pacer.started(resync: false, at: ms(12_000))
        #expect(pacer.next(at: ms(16_100)) == .wait(until: ms(60_000)))  // the retry is gone
    }

    // MARK: pacing

    @Test func twoChangesSyncAtOnceAndAThirdWaitsForItsToken() {
        var pacer = SyncPacer(minSyncPeriod: .seconds(1), syncPeriod: .seconds(30))
        // The first resync spends a token; ten seconds later the bucket is full again.
        let syncs = drive(&pacer, changes: [.seconds(10), .milliseconds(10_010), .milliseconds(10_020)], until: .seconds(20))
        #expect(syncs == [
            Sync(at: .zero, resync: true),
            Sync(at: .seconds(10), resync: false),
            Sync(at: .milliseconds(10_010), resync: false),
            Sync(at: .seconds(11), resync: false),  // the first token back: 10.01 s left 0.01 of one
        ])
    }

    @Test func aHundredChangesWhileWaitingAreOneSync() {
        var pacer = SyncPacer(minSyncPeriod: .seconds(1), syncPeriod: .seconds(30))
        // The resync at 0 and a change at 1 ms spend both tokens; the rest wait together.
        let changes = (1...101).map { Duration.milliseconds($0) }
        let syncs = drive(&pacer, changes: changes, until: .seconds(5))
        #expect(syncs == [
            Sync(at: .zero, resync: true),
            Sync(at: .milliseconds(1), resync: false),
            Sync(at: .seconds(1), resync: false),
        ])
    }

    @Test func quietResyncsEverySyncPeriod() {
        var pacer = SyncPacer(minSyncPeriod: .seconds(1), syncPeriod: .seconds(30))
        let syncs = drive(&pacer, until: .seconds(95))
        #expect(syncs == [0, 30, 60, 90].map { Sync(at: .seconds($0), resync: true) })
    }

    @Test func aStreamOfChangesDoesNotPutTheResyncOff() {
        var pacer = SyncPacer(minSyncPeriod: .seconds(1), syncPeriod: .seconds(30))
        let changes = stride(from: 50, to: 65_000, by: 100).map { Duration.milliseconds($0) }
        let syncs = drive(&pacer, changes: changes, until: .seconds(65))
        #expect(syncs.filter(\.resync).map(\.at) == [.zero, .seconds(30), .seconds(60)])
        // The rest: the burst's second token at once, then one a second as tokens come back.
        let forChanges = syncs.filter { !$0.resync }.map(\.at)
        #expect(forChanges.first == .milliseconds(50))
        #expect(Array(forChanges.dropFirst()) == (1...65).filter { $0 % 30 != 0 }.map { Duration.seconds($0) })
    }

    /// kube-proxy's periodic run goes through the rate limiter too; a due resync waits for a token
    /// and takes it before the changes, which it syncs as well.
    @Test func aDueResyncWaitsForATokenAndGoesFirst() {
        var pacer = SyncPacer(minSyncPeriod: .seconds(1), syncPeriod: .seconds(10), burst: 1)
        pacer.started(resync: true, at: ms(0))
        pacer.changed(at: ms(9500))
        #expect(pacer.next(at: ms(9500)) == .sync(resync: false))
        pacer.started(resync: false, at: ms(9500))
        pacer.changed(at: ms(9600))
        #expect(pacer.next(at: ms(9600)) == .wait(until: ms(10_000)))  // the resync is before the token
        #expect(pacer.next(at: ms(10_000)) == .wait(until: ms(10_500)))  // due, but no token
        #expect(pacer.next(at: ms(10_500)) == .sync(resync: true))
        pacer.started(resync: true, at: ms(10_500))
        #expect(pacer.next(at: ms(10_500)) == .wait(until: ms(20_500)))  // the change went with it
    }

    @Test func noMinSyncPeriodSyncsEveryChangeAtOnce() {
        var pacer = SyncPacer(minSyncPeriod: .zero, syncPeriod: .seconds(30))
        let changes = (1...100).map { Duration.milliseconds($0) }
        let syncs = drive(&pacer, changes: changes, until: .seconds(5))
        #expect(syncs == [Sync(at: .zero, resync: true)] + changes.map { Sync(at: $0, resync: false) })
        // Even many at the same instant.
        for _ in 0..<10 {
            pacer.changed(at: ms(6000))
            #expect(pacer.next(at: ms(6000)) == .sync(resync: false))
            pacer.started(resync: false, at: ms(6000))
        }
        #expect(pacer.next(at: ms(6000)) == .wait(until: ms(30_000)))
    }

    @Test func changesDuringASyncWaitForTheNextOne() {
        var pacer = SyncPacer(minSyncPeriod: .seconds(1), syncPeriod: .seconds(30))
        pacer.changed(at: ms(0))
        pacer.started(resync: true, at: ms(0))
        #expect(pacer.next(at: ms(600)) == .wait(until: ms(30_000)))  // taken by the sync

        pacer.started(resync: true, at: ms(30_000))
        pacer.changed(at: ms(30_500))  // the sync is still running
        #expect(pacer.next(at: ms(30_600)) == .sync(resync: false))

        // Driven: syncs taking 400 ms, changes landing inside them.
        var driven = SyncPacer(minSyncPeriod: .seconds(1), syncPeriod: .seconds(30))
        let syncs = drive(&driven, changes: [.milliseconds(200), .milliseconds(300)], until: .seconds(10),
                          syncTakes: .milliseconds(400))
        #expect(syncs == [Sync(at: .zero, resync: true), Sync(at: .milliseconds(400), resync: false)])
    }

    // MARK: retries

    @Test func aDrainCheckFiresOnceAndAgainWhenRearmed() {
        var pacer = SyncPacer(minSyncPeriod: .seconds(1), syncPeriod: .seconds(30))
        pacer.started(resync: true, at: ms(0))
        pacer.retry(after: .seconds(1), at: ms(200))  // draining real servers, seen by that sync
        #expect(pacer.next(at: ms(500)) == .wait(until: ms(1200)))
        #expect(pacer.next(at: ms(1200)) == .sync(resync: false))
        pacer.started(resync: false, at: ms(1200))
        #expect(pacer.next(at: ms(1300)) == .wait(until: ms(30_000)))  // once

        pacer.retry(after: .seconds(1), at: ms(1300))  // still draining
        #expect(pacer.next(at: ms(1300)) == .wait(until: ms(2300)))
        #expect(pacer.next(at: ms(2300)) == .sync(resync: false))
        pacer.started(resync: false, at: ms(2300))
        #expect(pacer.next(at: ms(2400)) == .wait(until: ms(30_000)))
    }

    @Test func theEarliestRetryWins() {
        var pacer = SyncPacer(minSyncPeriod: .seconds(1), syncPeriod: .seconds(30))
        pacer.started(resync: true, at: ms(0))
        pacer.retry(after: .seconds(5), at: ms(0))
        pacer.retry(after: .seconds(1), at: ms(0))
        pacer.retry(after: .seconds(3), at: ms(0))
        #expect(pacer.retryAt == ms(1000))
        #expect(pacer.next(at: ms(0)) == .wait(until: ms(1000)))
    }

    @Test func aDueRetryWaitsForAToken() {
        var pacer = SyncPacer(minSyncPeriod: .seconds(1), syncPeriod: .seconds(30), burst: 1)
        pacer.started(resync: true, at: ms(0))
        pacer.retry(after: .milliseconds(100), at: ms(0))
        #expect(pacer.next(at: ms(100)) == .wait(until: ms(1000)))
        #expect(pacer.next(at: ms(1000)) == .sync(resync: false))
    }

    // MARK: deadlines

    @Test func theDeadlineIsTheEarliestOfResyncTokenAndRetry() {
        // Nothing waiting: the resync.
        var quiet = SyncPacer(minSyncPeriod: .seconds(1), syncPeriod: .seconds(30), burst: 1)
        quiet.started(resync: true, at: ms(0))
        #expect(quiet.next(at: ms(0)) == .wait(until: ms(30_000)))
        // A retry before it.
        quiet.retry(after: .seconds(20), at: ms(0))
        #expect(quiet.next(at: ms(0)) == .wait(until: ms(20_000)))

        // A change waiting: the token, before the retry and the resync.
        var busy = SyncPacer(minSyncPeriod: .seconds(1), syncPeriod: .seconds(30), burst: 1)
        busy.started(resync: true, at: ms(0))
        busy.retry(after: .seconds(20), at: ms(0))
        busy.changed(at: ms(100))
        #expect(busy.next(at: ms(100)) == .wait(until: ms(1000)))
        // A retry before the token.
        busy.retry(after: .milliseconds(400), at: ms(100))
        #expect(busy.next(at: ms(100)) == .wait(until: ms(500)))

        // A change waiting for a token further away than the resync: the resync, then the token.
        var slow = SyncPacer(minSyncPeriod: .seconds(10), syncPeriod: .seconds(30), burst: 1)
        slow.started(resync: true, at: ms(0))
        slow.started(resync: false, at: ms(25_000))
        slow.changed(at: ms(26_000))
        slow.retry(after: .seconds(14), at: ms(26_000))
        #expect(slow.next(at: ms(26_000)) == .wait(until: ms(30_000)))
        #expect(slow.next(at: ms(30_000)) == .wait(until: ms(35_000)))
    }

    @Test func theFirstSyncIsAResyncAndTheBucketStartsFull() {
        var pacer = SyncPacer(minSyncPeriod: .seconds(1), syncPeriod: .seconds(30), burst: 3)
        #expect(pacer.lastSync == nil)
        #expect(pacer.next(at: ms(0)) == .sync(resync: true))
        pacer.started(resync: true, at: ms(0))
        for _ in 0..<2 {
            pacer.changed(at: ms(0))
            #expect(pacer.next(at: ms(0)) == .sync(resync: false))
            pacer.started(resync: false, at: ms(0))
        }
        pacer.changed(at: ms(0))
        #expect(pacer.next(at: ms(0)) == .wait(until: ms(1000)))
        #expect(pacer.lastSync == ms(0))
        #expect(pacer.lastResync == ms(0))
    }

    @Test func aSyncWithoutATokenLeavesTheBucketInDebt() {
        var pacer = SyncPacer(minSyncPeriod: .seconds(1), syncPeriod: .seconds(30), burst: 1)
        pacer.started(resync: true, at: ms(0))
        pacer.started(resync: false, at: ms(0))  // the caller synced regardless
        pacer.changed(at: ms(0))
        #expect(pacer.next(at: ms(0)) == .wait(until: ms(2000)))
    }

    @Test func theOldestWaitingChangeIsRemembered() {
        var pacer = SyncPacer(minSyncPeriod: .seconds(1), syncPeriod: .seconds(30))
        pacer.started(resync: true, at: ms(0))
        #expect(pacer.pendingSince == nil)
        pacer.changed(at: ms(100))
        pacer.changed(at: ms(200))
        #expect(pacer.pendingSince == ms(100))
        pacer.started(resync: false, at: ms(300))
        #expect(pacer.pendingSince == nil)
    }
}
