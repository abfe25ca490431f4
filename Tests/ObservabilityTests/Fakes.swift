import IPVS
import Proxy

/// The node's interfaces in memory: one node address, and a dummy interface that holds what it is told.
final class FakeNodeNetwork: NodeNetwork {
    var nodeAddresses: [IPAddress] = [IPAddress("192.168.1.10")!]
    private(set) var dummy: [String: Set<IPAddress>] = [:]

    func addresses(dummyInterface name: String, create: Bool) throws -> NodeAddresses {
        if create, dummy[name] == nil { dummy[name] = [] }
        return NodeAddresses(dummyInterfaceIndex: dummy[name] == nil ? nil : 1, bound: dummy[name] ?? [], node: nodeAddresses)
    }

    func bind(_ addresses: Set<IPAddress>, current: NodeAddresses) throws -> (added: Int, removed: Int) {
        dummy["kipvs0"] = addresses
        return (addresses.subtracting(current.bound).count, current.bound.subtracting(addresses).count)
    }

    func removeInterface(named name: String) throws { dummy[name] = nil }
}

/// A source that hands out whatever state it was last given.
final class StaticSource: ClusterSource {
    var state: ClusterState? {
        didSet {
            fresh = true
            wake?()
        }
    }
    private var wake: (@Sendable () -> Void)?
    private var fresh = false
    /// The state the last answer brought the caller to.
    private var handedOut: ClusterState?

    var name: String { "static" }

    func poll() -> Result<ClusterChanges, LoadError>? {
        guard fresh, let state else { return nil }
        fresh = false
        let changes = handedOut.map { ClusterChanges.between($0, state) } ?? ClusterChanges(adding: state)
        handedOut = state
        return .success(changes)
    }

    func setWake(_ wake: @escaping @Sendable () -> Void) { self.wake = wake }
}
