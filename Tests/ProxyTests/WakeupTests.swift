import Foundation
import Testing
@testable import Proxy

@Suite struct WakeupTests {
    /// Far enough that a wait reaching it means the signal was lost.
    var farAway: ContinuousClock.Instant { .now + .seconds(60) }

    /// Signals from a thread of its own, a little later: most likely once the waiter is asleep, and
    /// if not, the signal is kept and the waiter still returns true.
    func signalSoon(_ wakeup: Wakeup, after seconds: TimeInterval = 0.05) {
        Thread.detachNewThread {
            Thread.sleep(forTimeInterval: seconds)
            wakeup.signal()
        }
    }

    @Test func aSignalBeforeTheWaitIsKept() {
        let wakeup = Wakeup()
        wakeup.signal()
        #expect(wakeup.wait(until: farAway))
    }

    @Test func aSignalIsTakenOnceHoweverManyWereSent() {
        let wakeup = Wakeup()
        wakeup.signal()
        wakeup.signal()
        #expect(wakeup.wait(until: nil))
        #expect(!wakeup.wait(until: .now + .milliseconds(10)))
    }

    @Test func aWaitWithoutASignalTimesOut() {
        let wakeup = Wakeup()
        #expect(!wakeup.wait(until: .now + .milliseconds(20)))
        #expect(!wakeup.wait(until: .now - .seconds(1)))  // already passed
    }

    @Test func aSignalFromAnotherThreadWakesTheWaiter() async {
        let wakeup = Wakeup()
        let deadline = farAway
        let woken = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            Thread.detachNewThread { continuation.resume(returning: wakeup.wait(until: deadline)) }
            signalSoon(wakeup)
        }
        #expect(woken)
    }

    /// A lost signal fails this one by its time limit; a second signal well after it lets the waiter,
    /// and so the test, end.
    @Test(.timeLimit(.minutes(1))) func aWaiterWithoutDeadlineIsWokenFromAnotherThread() async {
        let wakeup = Wakeup()
        let woken = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            Thread.detachNewThread { continuation.resume(returning: wakeup.wait(until: nil)) }
            signalSoon(wakeup)
            signalSoon(wakeup, after: 90)
        }
        #expect(woken)
    }
}
