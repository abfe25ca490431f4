/// Applies parsed rules to a table, batching runs of operations and reporting failures by line.
public enum Restore {
    public struct Failure: Error, Hashable, Sendable, CustomStringConvertible {
        public let line: Int
        public let error: IPVSError
        public var description: String { "line \(line): \(error)" }
    }

    /// Every operation is attempted (the kernel goes on after a refusal); the refusals come back in line order.
    public static func apply(_ rules: [Rule], to ipvs: IPVSHandle) throws -> [Failure] {
        var failures: [Failure] = []
        var pending: [(line: Int, operation: IPVSOperation)] = []
        func flushPending() throws {
            let refused = try ipvs.apply(pending.map(\.operation))
            failures += refused.keys.sorted().map { Failure(line: pending[$0].line, error: refused[$0]!) }
            pending.removeAll()
        }
        for rule in rules {
            switch rule.action {
            case .operation(let operation):
                pending.append((rule.line, operation))
            case .flush:
                try flushPending()
                try ipvs.flush()
            }
        }
        try flushPending()
        return failures
    }
}
