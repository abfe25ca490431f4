/// Exponential backoff with jitter, bounded: each failure doubles the base delay until it reaches
/// `maximum / (1 + jitter)`, and each delay is the base stretched by up to `jitter`, so no delay
/// exceeds `maximum` while nodes retrying after the same outage still spread out.
public struct Backoff: Hashable, Sendable {
    public var initial: Duration
    public var maximum: Duration
    public var factor: Int
    /// 0.5: a delay falls in [base, 1.5 × base).
    public var jitter: Double
    /// Failures since the last success.
    public private(set) var failures = 0

    /// client-go's reflector backoff: 0.8 s doubling up to 30 s.
    public init(initial: Duration = .milliseconds(800), maximum: Duration = .seconds(30), factor: Int = 2,
                jitter: Double = 0.5) {
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.jitter = jitter
    }

    /// The undisturbed delay after `failures` failures.
    public func base(afterFailures failures: Int) -> Duration {
        let cap = maximum / (1 + jitter)
        var base = initial
        for _ in 1..<max(failures, 1) where base < cap { base *= factor }
        return min(base, cap)
    }

    /// Records a failure; returns how long to wait. `random` is in [0, 1).
    public mutating func next(random: Double) -> Duration {
        failures += 1
        let base = base(afterFailures: failures)
        return min(base + base * (jitter * random), maximum)
    }

    public mutating func reset() {
        failures = 0
    }
}

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
