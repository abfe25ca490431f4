import IPVS

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
    public func sync(_ desired: DesiredState, ownership: Ownership, now: ContinuousClock.Instant) throws -> SyncSummary {
        let plan = try plan(desired, ownership: ownership, now: now)
        termination = plan.termination
        var summary = SyncSummary()
        guard !plan.isEmpty else { return summary }

        let failures = try handle.apply(plan.operations)
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
        return summary
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
