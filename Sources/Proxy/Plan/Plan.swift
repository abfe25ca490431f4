import IPVS
import IPVSText

/// The operations that take the kernel's table from what it holds to what is desired, touching
/// only what kipvs owns. Ordered so that every step is valid on its own: virtual servers are
/// added or updated, then real servers added or updated, then real servers deleted, then virtual
/// servers deleted. A leaving real server is judged by the connection counts in `current`, so
/// those must have been read from the kernel just before.
public struct Plan: Hashable, Sendable, CustomStringConvertible {
    public var operations: [IPVSOperation]
    /// The draining bookkeeping to pass to the next plan.
    public var termination: GracefulTermination

    public init(operations: [IPVSOperation], termination: GracefulTermination) {
        self.operations = operations
        self.termination = termination
    }

    /// With `keys`, only those virtual servers are planned (`current` need hold no others), and
    /// the draining bookkeeping of the rest is passed on as it was.
    public init(desired: DesiredState, current: [(VirtualServerStatus, [RealServerStatus])], ownership: Ownership,
                termination: GracefulTermination, now: ContinuousClock.Instant, keys: Set<VirtualServerKey>? = nil) {
        var planner = Planner(previous: termination, now: now)
        if let keys { planner.next.drainingSince = termination.drainingSince.filter { !keys.contains($0.key.virtualServer) } }
        let currentByKey = Dictionary(current.map { ($0.0.server.key, $0) }, uniquingKeysWith: { first, _ in first })

        let wanted = keys.map { $0.filter { desired.virtualServers[$0] != nil } } ?? Set(desired.virtualServers.keys)
        for key in wanted.sorted() {
            let want = desired.virtualServers[key]!
            if let (status, reals) = currentByKey[key] {
                planner.update(status.server, to: want.server)
                planner.reconcile(reals, with: want.realServers, of: key)
            } else {
                planner.add(want)
            }
        }
        for key in currentByKey.keys.sorted() where desired.virtualServers[key] == nil && keys?.contains(key) != false
            && ownership.owns(key) {
            planner.virtualServerDeletes.append(.deleteVirtualServer(key))
        }
        self.init(operations: planner.operations, termination: planner.next)
    }

    public var isEmpty: Bool { operations.isEmpty }

    /// The operations in ipvsadm notation, one per line.
    public var description: String { IPVSAdmFormat.commands(operations) }
}

private struct Planner {
    let previous: GracefulTermination
    let now: ContinuousClock.Instant
    var next: GracefulTermination

    var virtualServerChanges: [IPVSOperation] = []
    var realServerChanges: [IPVSOperation] = []
    var realServerDeletes: [IPVSOperation] = []
    var virtualServerDeletes: [IPVSOperation] = []

    init(previous: GracefulTermination, now: ContinuousClock.Instant) {
        self.previous = previous
        self.now = now
        self.next = GracefulTermination(gracePeriod: previous.gracePeriod)
    }

    var operations: [IPVSOperation] {
        virtualServerChanges + realServerChanges + realServerDeletes + virtualServerDeletes
    }

    mutating func add(_ want: DesiredVirtualServer) {
        virtualServerChanges.append(.addVirtualServer(want.server))
        for key in want.realServers.keys.sorted() {
            realServerChanges.append(.addRealServer(want.server.key, want.realServers[key]!))
        }
    }

    mutating func update(_ have: VirtualServer, to want: VirtualServer) {
        if !have.matches(want) { virtualServerChanges.append(.updateVirtualServer(want)) }
    }

    mutating func reconcile(_ reals: [RealServerStatus], with wanted: [RealServerKey: RealServer],
                            of key: VirtualServerKey) {
        let have = Dictionary(reals.map { ($0.server.key, $0) }, uniquingKeysWith: { first, _ in first })
        for realKey in wanted.keys.sorted() {
            let want = wanted[realKey]!
            if let status = have[realKey] {
                // Also restores a draining real server that is wanted again.
                if !status.server.matches(want) { realServerChanges.append(.updateRealServer(key, want)) }
            } else {
                realServerChanges.append(.addRealServer(key, want))
            }
        }
        for realKey in have.keys.sorted() where wanted[realKey] == nil {
            retire(have[realKey]!, of: key)
        }
    }

    /// As kube-proxy: a leaving real server without connections is deleted at once; a TCP one
    /// with connections goes to weight 0 and is deleted when they are gone or the grace period
    /// is over. UDP and SCTP real servers are deleted at once in any case.
    private mutating func retire(_ status: RealServerStatus, of key: VirtualServerKey) {
        let delete = IPVSOperation.deleteRealServer(key, status.server.key)
        let connections = UInt64(status.activeConnections) + UInt64(status.inactiveConnections)
        guard GracefulTermination.drains(key), connections > 0 else { return realServerDeletes.append(delete) }

        let id = GracefulTermination.Key(virtualServer: key, realServer: status.server.key)
        let since = previous.drainingSince[id] ?? now
        if status.server.weight != 0 {
            var quiesced = status.server
            quiesced.weight = 0
            realServerChanges.append(.updateRealServer(key, quiesced))
            next.drainingSince[id] = since
        } else if now >= since + previous.gracePeriod {
            realServerDeletes.append(delete)
        } else {
            next.drainingSince[id] = since
        }
    }
}

extension VirtualServer {
    /// Equal in everything the kernel lets us set (the HASHED flag is the kernel's own).
    func matches(_ other: VirtualServer) -> Bool {
        key == other.key && scheduler == other.scheduler
            && flags.subtracting(.hashed) == other.flags.subtracting(.hashed)
            && timeout == other.timeout && netmask == other.netmask && persistenceEngine == other.persistenceEngine
    }
}

extension RealServer {
    func matches(_ other: RealServer) -> Bool {
        key == other.key && forwarding == other.forwarding && weight == other.weight
            && upperThreshold == other.upperThreshold && lowerThreshold == other.lowerThreshold
    }
}
