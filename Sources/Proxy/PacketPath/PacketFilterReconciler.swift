import NFTables

/// The nf_tables operations that take the kipvs table from what it holds to what is wanted.
/// When the table is missing or its chains, sets or rules differ from the ruleset, it is
/// rebuilt whole; otherwise only set elements change.
public struct PacketFilterPlan: Hashable, Sendable, CustomStringConvertible {
    public var operations: [NFTOperation]
    public var rebuild: Bool
    public var elementsAdded = 0
    public var elementsDeleted = 0

    public init(table: TableName, ruleset: Ruleset, desired: PacketFilterElements, current: TableSnapshot?) {
        if let current, ruleset.matches(current) {
            rebuild = false
            operations = []
            for set in ruleset.sets {
                let want = desired.sets[set.name] ?? []
                let have = current.elements[set.name] ?? []
                // Deletions first: a map element whose value changed is deleted, then added anew.
                let stale = have.subtracting(want)
                let missing = want.subtracting(have)
                if !stale.isEmpty { operations.append(.deleteElements(table, set: set.name, Self.sorted(stale))) }
                if !missing.isEmpty { operations.append(.addElements(table, set: set.name, Self.sorted(missing))) }
                elementsDeleted += stale.count
                elementsAdded += missing.count
            }
            return
        }
        rebuild = true
        // Adding before deleting makes the delete valid whether or not the table exists.
        operations = [.addTable(table), .deleteTable(table), .addTable(table)]
        operations += ruleset.chains.map { .addChain(table, $0) }
        operations += ruleset.sets.map { .addSet(table, $0) }
        for set in ruleset.sets {
            guard let elements = desired.sets[set.name], !elements.isEmpty else { continue }
            operations.append(.addElements(table, set: set.name, Self.sorted(elements)))
            elementsAdded += elements.count
        }
        operations += ruleset.rules.map { .addRule(table, $0) }
    }

    public var isEmpty: Bool { operations.isEmpty }

    public var changed: Bool { !operations.isEmpty }

    /// Sorted for stable plans and readable output.
    static func sorted(_ elements: Set<SetElement>) -> [SetElement] {
        elements.sorted { a, b in
            if a.key != b.key { return a.key.lexicographicallyPrecedes(b.key) }
            if a.keyEnd != b.keyEnd { return (a.keyEnd ?? []).lexicographicallyPrecedes(b.keyEnd ?? []) }
            return (a.data ?? []).lexicographicallyPrecedes(b.data ?? [])
        }
    }

    public var description: String { PacketFilterFormat.commands(operations) }
}

/// What one packet-filter sync did.
public struct PacketFilterSummary: Hashable, Sendable, CustomStringConvertible {
    public var rebuilt = false
    public var elementsAdded = 0
    public var elementsDeleted = 0

    public init() {}

    public var changed: Bool { rebuilt || elementsAdded > 0 || elementsDeleted > 0 }

    public var description: String {
        (rebuilt ? "table rebuilt, " : "") + "elements +\(elementsAdded) -\(elementsDeleted)"
    }
}

/// Keeps the kipvs table equal to the ruleset and the desired elements: one transaction per sync.
/// Between periodic resyncs it plans against what the last commit left; any failure forgets that,
/// so the next sync reads the kernel again. Use it from one task at a time.
public final class PacketFilterReconciler {
    public let handle: any NFTablesHandle
    public let config: PacketFilterConfig
    public let ruleset: Ruleset
    /// The table as the last successful commit left it; nil forces a read.
    private var known: TableSnapshot?

    public init(handle: any NFTablesHandle, config: PacketFilterConfig) {
        self.handle = handle
        self.config = config
        self.ruleset = Ruleset(config)
    }

    /// Reads the table (or takes the last known one) and plans, without writing.
    public func plan(_ desired: PacketFilterElements, readKernel: Bool = true) throws -> PacketFilterPlan {
        let current: TableSnapshot?
        if !readKernel, let known {
            current = known
        } else {
            do {
                current = try handle.table(config.table)
            } catch let error as NFTablesError where error.errno == .protocolError {
                // Something kipvs never writes was added to its table: rebuild it.
                current = TableSnapshot()
            }
        }
        return PacketFilterPlan(table: config.table, ruleset: ruleset, desired: desired, current: current)
    }

    public func sync(_ desired: PacketFilterElements, readKernel: Bool) throws -> PacketFilterSummary {
        let plan: PacketFilterPlan
        do {
            plan = try self.plan(desired, readKernel: readKernel)
            if !plan.isEmpty { try handle.commit(plan.operations) }
        } catch {
            known = nil
            throw error
        }
        known = TableSnapshot(chains: ruleset.chains, rules: ruleset.rules, sets: ruleset.sets, elements: desired.sets)
        var summary = PacketFilterSummary()
        summary.rebuilt = plan.rebuild
        summary.elementsAdded = plan.elementsAdded
        summary.elementsDeleted = plan.elementsDeleted
        return summary
    }

    /// Takes `removing` out of the sets and puts `adding` in, against the table the last commit
    /// left, in one transaction. Returns nil, writing nothing, when that table is unknown or does
    /// not hold what the change starts from: then a full `sync` is needed.
    public func sync(removing: [String: Set<SetElement>], adding: [String: Set<SetElement>]) throws -> PacketFilterSummary? {
        guard known != nil else { return nil }
        var operations: [NFTOperation] = []
        var changes: [(set: String, stale: Set<SetElement>, missing: Set<SetElement>)] = []
        for set in ruleset.sets {
            let stale = (removing[set.name] ?? []).subtracting(adding[set.name] ?? [])
            let missing = (adding[set.name] ?? []).subtracting(removing[set.name] ?? [])
            guard !stale.isEmpty || !missing.isEmpty else { continue }
            let have = known!.elements[set.name] ?? []
            guard stale.allSatisfy(have.contains), !missing.contains(where: have.contains) else { return nil }
            // Deletions first: a map element whose value changed is deleted, then added anew.
            if !stale.isEmpty { operations.append(.deleteElements(config.table, set: set.name, PacketFilterPlan.sorted(stale))) }
            if !missing.isEmpty { operations.append(.addElements(config.table, set: set.name, PacketFilterPlan.sorted(missing))) }
            changes.append((set.name, stale, missing))
        }
        var summary = PacketFilterSummary()
        guard !operations.isEmpty else { return summary }
        do {
            try handle.commit(operations)
        } catch {
            known = nil
            throw error
        }
        for change in changes {
            known!.elements[change.set, default: []].subtract(change.stale)
            known!.elements[change.set, default: []].formUnion(change.missing)
            summary.elementsDeleted += change.stale.count
            summary.elementsAdded += change.missing.count
        }
        return summary
    }

    /// Whether the kernel takes a table of this family, by adding and deleting a scratch one in one
    /// transaction, which leaves nothing behind.
    public func kernelCanHoldTable() throws -> Bool {
        let probe = TableName(config.table.family, config.table.name + "-probe")
        do {
            try handle.commit([.addTable(probe), .deleteTable(probe)])
            return true
        } catch let error as NFTablesError where error.meansNoPacketFilter {
            return false
        }
    }

    /// Deletes the table; false when there was none.
    @discardableResult
    public func remove() throws -> Bool {
        known = nil
        do {
            guard try handle.table(config.table) != nil else { return false }
        } catch let error as NFTablesError where error.meansNoPacketFilter {
            return false
        }
        try handle.commit([.deleteTable(config.table)])
        return true
    }
}

extension NFTablesError {
    /// The kernel has no nf_tables for this table's family (UML's, for one, has it for bridges only).
    /// No nfnetlink at all answers EPROTONOSUPPORT when the socket is opened.
    public var meansNoPacketFilter: Bool { [.notSupported, .addressFamilyNotSupported, .protocolNotSupported].contains(errno) }
}
