import Foundation

/// What the sync loop's own thread sleeps on between syncs: woken by `signal()` from any thread, or
/// by its deadline. A signal is kept until a wait takes it, so one sent while the loop is busy
/// syncing makes its next wait return at once; any number of signals before a wait count as one.
/// Meant for one waiting thread at a time.
public final class Wakeup: @unchecked Sendable {
    /// Guards `signalled`; unchecked Sendable because every access holds it.
    private let condition = NSCondition()
    private var signalled = false

    /// The longest single sleep on the condition. Its timeout is a wall-clock `Date`: a step of the
    /// system clock backwards would otherwise stretch a wait by as much, this bounds it to a slice.
    private static let slice = Duration.seconds(1)

    public init() {}

    /// Wakes the waiter, or the next wait if no one waits now.
    public func signal() {
        condition.lock()
        defer { condition.unlock() }
        signalled = true
        condition.signal()
    }

    /// Sleeps until signalled (true) or until `deadline` passes (false); nil waits for a signal only.
    /// A signal already there returns at once and is taken.
    public func wait(until deadline: ContinuousClock.Instant?) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while !signalled {
            guard let deadline else {
                condition.wait()
                continue  // a wakeup without a signal is possible: look again
            }
            // The deadline is on ContinuousClock; only the time left is handed to the wall clock.
            let remaining = deadline - ContinuousClock.now
            if remaining <= .zero { return false }
            let sleep = min(remaining, Self.slice)
            // Timing out (false) says nothing here: the loop asks ContinuousClock whether the deadline passed.
            _ = condition.wait(until: Date(timeIntervalSinceNow: Self.seconds(sleep)))
        }
        signalled = false
        return true
    }

    private static func seconds(_ duration: Duration) -> TimeInterval {
        let (seconds, attoseconds) = duration.components
        return TimeInterval(seconds) + TimeInterval(attoseconds) * 1e-18
    }
}
