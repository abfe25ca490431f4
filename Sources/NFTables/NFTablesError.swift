import Netlink

/// A failed nf_tables call: the kernel's errno and what was being done. For a transaction,
/// `operationIndex` names the operation the kernel refused; the kernel then applied none of them.
public struct NFTablesError: ErrnoCarrying, Hashable, Sendable, CustomStringConvertible {
    public let errno: Errno
    /// The refused operation's index in the transaction; nil for reads and whole-batch failures.
    public let operationIndex: Int?
    /// What failed, e.g. `add rule to chain inet kipvs nat-prerouting`.
    public let operation: String

    public init(errno: Errno, operationIndex: Int? = nil, operation: String) {
        self.errno = errno
        self.operationIndex = operationIndex
        self.operation = operation
    }

    /// Replies were lost (ENOBUFS): whether the transaction was applied is unknown; read the table again.
    public var isStateUnknown: Bool { errno == .noBufferSpace && operationIndex == nil }

    public var description: String {
        if isStateUnknown { return "\(operation): replies lost, whether the kernel applied it is unknown (\(errno.name))" }
        return "\(operation): \(errno)"
    }
}

extension NFTOperation: CustomStringConvertible {
    public var description: String {
        switch self {
        case .addTable(let table): "add table \(table)"
        case .deleteTable(let table): "delete table \(table)"
        case .addChain(let table, let chain): "add chain \(table) \(chain.name)"
        case .addRule(let table, let rule): "add rule to chain \(table) \(rule.chain)"
        case .addSet(let table, let set): "add \(set.data == nil ? "set" : "map") \(table) \(set.name)"
        case .addElements(let table, let set, let elements): "add \(elements.count) elements to set \(table) \(set)"
        case .deleteElements(let table, let set, let elements): "delete \(elements.count) elements from set \(table) \(set)"
        }
    }
}
