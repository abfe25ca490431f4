import Netlink

/// Tables in memory that answer as the kernel does: a commit applies every operation or none,
/// and a refusal carries the kernel's errno and the index of the operation it refused.
public final class FakeNFTables: NFTablesHandle {
    private struct Table {
        var chains: [Chain] = []
        var rules: [String: [Rule]] = [:]
        var sets: [SetSpec] = []
        var elements: [String: [SetElement]] = [:]

        func chain(_ name: String) -> Chain? { chains.first { $0.name == name } }
        func set(_ name: String) -> SetSpec? { sets.first { $0.name == name } }
    }

    private var tables: [TableName: Table] = [:]
    /// Every transaction passed to `commit`, in order, whether or not it was applied.
    public private(set) var commits: [[NFTOperation]] = []

    public init() {}

    public func table(_ name: TableName) -> TableSnapshot? {
        guard let table = tables[name] else { return nil }
        return TableSnapshot(chains: table.chains, rules: table.chains.flatMap { table.rules[$0.name] ?? [] },
                             sets: table.sets, elements: table.elements.mapValues { Set($0) })
    }

    /// Deletes a table behind kipvs' back, as `nft delete table` would.
    public func deleteFromOutside(_ name: TableName) {
        tables[name] = nil
    }

    public func commit(_ operations: [NFTOperation]) throws {
        commits.append(operations)
        var next = tables
        for (index, operation) in operations.enumerated() {
            if let errno = Self.apply(operation, to: &next) {
                throw NFTablesError(errno: errno, operationIndex: index, operation: operation.description)
            }
        }
        tables = next
    }

    /// Applies one operation; the errno the kernel would answer, or nil.
    private static func apply(_ operation: NFTOperation, to tables: inout [TableName: Table]) -> Errno? {
        switch operation {
        case .addTable(let name):
            if tables[name] == nil { tables[name] = Table() }
        case .deleteTable(let name):
            // The kernel deletes a table with everything in it.
            guard tables.removeValue(forKey: name) != nil else { return .noSuchFileOrDirectory }
        case .addChain(let name, let chain):
            guard var table = tables[name] else { return .noSuchFileOrDirectory }
            if let existing = table.chain(chain.name) {
                // Without NLM_F_EXCL an existing chain is updated: a regular one cannot become a
                // base chain, and a base chain's hook cannot change (6.1 answers EEXIST, later kernels EOPNOTSUPP).
                if let hook = chain.hook, hook != existing.hook { return .fileExists }
                return nil
            }
            table.chains.append(chain)
            tables[name] = table
        case .addRule(let name, let rule):
            guard var table = tables[name], table.chain(rule.chain) != nil else { return .noSuchFileOrDirectory }
            if let errno = check(rule, in: table) { return errno }
            table.rules[rule.chain, default: []].append(rule)
            tables[name] = table
        case .addSet(let name, let spec):
            guard var table = tables[name] else { return .noSuchFileOrDirectory }
            if let existing = table.set(spec.name) { return existing == spec ? nil : .fileExists }
            table.sets.append(spec)
            table.elements[spec.name] = []
            tables[name] = table
        case .addElements(let name, let set, let elements):
            guard var table = tables[name], let spec = table.set(set) else { return .noSuchFileOrDirectory }
            var current = table.elements[set] ?? []
            var index = Dictionary(current.enumerated().map { (ElementKey($0.element), $0.offset) }, uniquingKeysWith: { a, _ in a })
            for element in elements {
                if let errno = check(element, in: spec) { return errno }
                if let at = index[ElementKey(element)] {
                    // The same element again is accepted (no NLM_F_EXCL); another value for its key is not.
                    if current[at] != element { return .fileExists }
                    continue
                }
                index[ElementKey(element)] = current.count
                current.append(element)
            }
            table.elements[set] = current
            tables[name] = table
        case .deleteElements(let name, let set, let elements):
            guard var table = tables[name], table.set(set) != nil else { return .noSuchFileOrDirectory }
            var current = table.elements[set] ?? []
            for element in elements {
                guard let at = current.firstIndex(where: { ElementKey($0) == ElementKey(element) }) else { return .noSuchFileOrDirectory }
                current.remove(at: at)
            }
            table.elements[set] = current
            tables[name] = table
        }
        return nil
    }

    /// What identifies an element: its key (and key end), not its value.
    private struct ElementKey: Hashable {
        var key: [UInt8]
        var keyEnd: [UInt8]?
        init(_ element: SetElement) {
            key = element.key
            keyEnd = element.keyEnd
        }
    }

    /// The kernel's checks on an element: key length, and a value exactly when the set is a map.
    private static func check(_ element: SetElement, in spec: SetSpec) -> Errno? {
        guard element.key.count == spec.keyLength else { return .invalidArgument }
        if let end = element.keyEnd, !spec.interval || end.count != spec.keyLength { return .invalidArgument }
        switch spec.data {
        case nil:
            if element.data != nil || element.verdict != nil { return .invalidArgument }
        case .verdict?:
            if element.verdict == nil { return .invalidArgument }
            if case .jump(let chain)? = element.verdict, chain.isEmpty { return .invalidArgument }
        case let data?:
            if element.data?.count != data.length { return .invalidArgument }
        }
        return nil
    }

    /// The kernel's checks on a rule's references: the sets it looks up and the chains it jumps to.
    private static func check(_ rule: Rule, in table: Table) -> Errno? {
        for expression in rule.expressions {
            switch expression {
            case .lookup(let set, _, let into, let inverted):
                guard let spec = table.set(set) else { return .noSuchFileOrDirectory }
                // A value needs a map, and an inverted lookup has none to give.
                if into != nil && (spec.data == nil || inverted) { return .invalidArgument }
            case .verdict(.jump(let chain)), .verdict(.goto(let chain)):
                guard let target = table.chain(chain) else { return .noSuchFileOrDirectory }
                if target.hook != nil { return .notSupported }  // a base chain cannot be jumped to
            default:
                continue
            }
        }
        return nil
    }
}
