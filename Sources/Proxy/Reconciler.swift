import IPVS
import IPVSText

/// What one sync did.
public struct SyncSummary: Hashable, Sendable, CustomStringConvertible {
    public struct Failure: Hashable, Sendable, CustomStringConvertible {
        public var operation: IPVSOperation
        public var error: IPVSError

        public var description: String { "\(IPVSAdmFormat.command(operation)): \(error)" }
    }

    public var virtualServersAdded = 0
    public var virtualServersUpdated = 0
    public var virtualServersDeleted = 0
    public var realServersAdded = 0
    public var realServersUpdated = 0
    public var realServersDeleted = 0
    public var failures: [Failure] = []

    public init() {}

    /// Operations that succeeded.
    public var applied: Int {
        virtualServersAdded + virtualServersUpdated + virtualServersDeleted
            + realServersAdded + realServersUpdated + realServersDeleted
    }

    /// Whether the sync wrote anything, or tried to.
    public var changed: Bool { applied > 0 || !failures.isEmpty }

    public var description: String {
        "virtual servers +\(virtualServersAdded) ~\(virtualServersUpdated) -\(virtualServersDeleted), "
            + "real servers +\(realServersAdded) ~\(realServersUpdated) -\(realServersDeleted), "
            + "\(failures.count) failed"
    }

    mutating func count(_ operation: IPVSOperation) {
        switch operation {
        case .addVirtualServer: virtualServersAdded += 1
        case .updateVirtualServer: virtualServersUpdated += 1
        case .deleteVirtualServer: virtualServersDeleted += 1
        case .addRealServer: realServersAdded += 1
        case .updateRealServer: realServersUpdated += 1
        case .deleteRealServer: realServersDeleted += 1
        }
    }
}

/// Brings the kernel's IPVS table to a desired state: read, plan, apply. Keeps the draining
/// bookkeeping between syncs; use it from one task at a time.
public final class Reconciler {
    public let handle: any IPVSHandle
    public private(set) var termination: GracefulTermination
    /// The owned part of the kernel's table as the last sync left it; nil forces a read.
    private var known: [VirtualServerKey: (VirtualServerStatus, [RealServerStatus])]?

    public init(handle: any IPVSHandle, gracePeriod: Duration = GracefulTermination.defaultGracePeriod) {
        self.handle = handle
        self.termination = GracefulTermination(gracePeriod: gracePeriod)
    }

    /// Reads the table and plans, without writing (`kipvs plan`).
    public func plan(_ desired: DesiredState, ownership: Ownership, now: ContinuousClock.Instant) throws -> Plan {
        Plan(desired: desired, current: try currentTable(desired, ownership: ownership), ownership: ownership,
             termination: termination, now: now)
    }

    /// One sync. Throws only when the table cannot be read or the outcome of the writes is unknown;
    /// operations the kernel refused are in the summary, and the next sync retries them.
    ///
    /// With `readKernel` false the plan is made against the table as the last sync left it (the
    /// last read plus kipvs' own successful writes), re-reading only virtual servers with draining
    /// or leaving TCP real servers, whose connection counts decide their deletion. Any failure
    /// forgets that table, so the next sync reads the kernel again; periodic resyncs always read it.
    public func sync(_ desired: DesiredState, ownership: Ownership, now: ContinuousClock.Instant,
                     readKernel: Bool = true) throws -> SyncSummary {
        do {
            if readKernel || known == nil {
                known = Self.keyed(try currentTable(desired, ownership: ownership))
            } else {
                try refreshCounts(of: Set(known!.keys), desired: desired)
            }
        } catch {
            known = nil
            throw error
        }
        let current = known!.keys.sorted().map { known![$0]! }
        return try apply(Plan(desired: desired, current: current, ownership: ownership, termination: termination, now: now))
    }

    /// Plans only the virtual servers `keys` names, and those with draining real servers, against
    /// the table the last sync left: a change costs what it changes. Returns nil when that table
    /// is unknown; then a full `sync` is needed.
    public func sync(keys: Set<VirtualServerKey>, desired: DesiredState, ownership: Ownership,
                     now: ContinuousClock.Instant) throws -> SyncSummary? {
        guard known != nil else { return nil }
        let keys = keys.union(termination.drainingSince.keys.map(\.virtualServer))
        do {
            try refreshCounts(of: keys, desired: desired)
        } catch {
            known = nil
            throw error
        }
        let current = keys.sorted().compactMap { known![$0] }
        return try apply(Plan(desired: desired, current: current, ownership: ownership, termination: termination,
                              now: now, keys: keys))
    }

    /// Virtual servers with draining real servers: nil when there are none.
    public var drainingVirtualServers: Set<VirtualServerKey> { Set(termination.drainingSince.keys.map(\.virtualServer)) }

    private func apply(_ plan: Plan) throws -> SyncSummary {
        termination = plan.termination
        var summary = SyncSummary()
        guard !plan.isEmpty else { return summary }

        let failures: [Int: IPVSError]
        do {
            failures = try handle.apply(plan.operations)
        } catch {
            known = nil
            throw error
        }
        for (index, operation) in plan.operations.enumerated() {
            guard let error = failures[index] else {
                summary.count(operation)
                continue
            }
            summary.failures.append(SyncSummary.Failure(operation: operation, error: error))
            // A weight-0 update that failed did not start draining; the next plan starts it afresh.
            if case .updateRealServer(let key, let real) = operation, real.weight == 0 {
                termination.forget(GracefulTermination.Key(virtualServer: key, realServer: real.key))
            }
        }
        if failures.isEmpty { Self.apply(plan.operations, to: &known!) } else { known = nil }
        return summary
    }

    /// Reads afresh the real servers of those of `keys` whose connection counts a plan will judge.
    private func refreshCounts(of keys: Set<VirtualServerKey>, desired: DesiredState) throws {
        for key in Self.needingCounts(known!, keys: keys, desired: desired, draining: termination) {
            known![key]!.1 = try handle.realServers(of: key)
        }
    }

    /// Virtual servers whose connection counts the plan will judge: those with draining real
    /// servers, and TCP ones that stay but lose real servers. The known table's counts are as old
    /// as the last read, and zero for real servers added since, so they cannot say a real server
    /// is idle. Virtual servers that go entirely take their real servers with them unread.
    static func needingCounts(_ table: [VirtualServerKey: (VirtualServerStatus, [RealServerStatus])], keys: Set<VirtualServerKey>,
                              desired: DesiredState, draining: GracefulTermination) -> [VirtualServerKey] {
        var needed = Set(draining.drainingSince.keys.map(\.virtualServer))
        for key in keys where GracefulTermination.drains(key) {
            guard let entry = table[key], let want = desired.virtualServers[key] else { continue }
            if entry.1.contains(where: { want.realServers[$0.server.key] == nil }) { needed.insert(key) }
        }
        return needed.filter { table[$0] != nil }.sorted()
    }

    static func keyed(_ table: [(VirtualServerStatus, [RealServerStatus])])
        -> [VirtualServerKey: (VirtualServerStatus, [RealServerStatus])] {
        Dictionary(table.map { ($0.0.server.key, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// `table` after `operations` succeeded. New entries have no counters yet.
    static func apply(_ operations: [IPVSOperation],
                      to table: inout [VirtualServerKey: (VirtualServerStatus, [RealServerStatus])]) {
        for operation in operations {
            switch operation {
            case .addVirtualServer(let server):
                table[server.key] = (VirtualServerStatus(server: server), [])
            case .updateVirtualServer(let server):
                table[server.key]?.0.server = server
            case .deleteVirtualServer(let key):
                table[key] = nil
            case .addRealServer(let key, let real):
                table[key]?.1.append(RealServerStatus(server: real))
            case .updateRealServer(let key, let real):
                if let index = table[key]?.1.firstIndex(where: { $0.server.key == real.key }) {
                    table[key]?.1[index].server = real
                }
            case .deleteRealServer(let key, let realKey):
                table[key]?.1.removeAll { $0.server.key == realKey }
            }
        }
    }

    /// The virtual servers kipvs manages, with their real servers. Real servers of foreign virtual
    /// servers are not even read.
    private func currentTable(_ desired: DesiredState, ownership: Ownership) throws
        -> [(VirtualServerStatus, [RealServerStatus])] {
        try handle.virtualServers()
            .filter { desired.virtualServers[$0.server.key] != nil || ownership.owns($0.server.key) }
            .map { ($0, try handle.realServers(of: $0.server.key)) }
    }
}
