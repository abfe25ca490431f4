import IPVS

/// Applies parsed rules to a table, batching runs of operations and reporting failures by line.
public enum Restore {
    public struct Failure: Error, Hashable, Sendable, CustomStringConvertible {
        public let line: Int
        public let error: IPVSError
        public var description: String { "line \(line): \(error)" }
    }

    /// Operations handed to the kernel per call: many sends each, and a bounded buffer reused
    /// throughout, where one array of every operation would be a second copy of the whole input.
    static let chunk = 16_384

    /// Every operation is attempted (the kernel goes on after a refusal); the refusals come back in line order.
    public static func apply(_ rules: [Rule], to ipvs: IPVSHandle) throws -> [Failure] {
        try apply(to: ipvs) { body in try rules.forEach(body) }
    }

    /// The same for rules text already checked with `RuleParser`: read again as it is applied.
    public static func apply(ruleText: [UInt8], to ipvs: IPVSHandle) throws -> [Failure] {
        try apply(to: ipvs) { body in try RuleParser.forEachRule(in: ruleText, body) }
    }

    private static func apply(to ipvs: IPVSHandle, rules: ((Rule) throws -> Void) throws -> Void) throws -> [Failure] {
        var failures: [Failure] = []
        var operations: [IPVSOperation] = []
        var lines: [Int] = []
        operations.reserveCapacity(chunk)
        lines.reserveCapacity(chunk)
        func applyPending() throws {
            guard !operations.isEmpty else { return }
            let refused = try ipvs.apply(operations)
            failures += refused.keys.sorted().map { Failure(line: lines[$0], error: refused[$0]!) }
            operations.removeAll(keepingCapacity: true)
            lines.removeAll(keepingCapacity: true)
        }
        try rules { rule in
            switch rule.action {
            case .operation(let operation):
                operations.append(operation)
                lines.append(rule.line)
                if operations.count == chunk { try applyPending() }
            case .flush:
                try applyPending()
                try ipvs.flush()
            }
        }
        try applyPending()
        return failures
    }
}
