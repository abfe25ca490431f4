import IPVS
import Proxy

/// The node's interfaces in memory: one node address, and a dummy interface that holds what it is told.
final class FakeNodeNetwork: NodeNetwork {
    var nodeAddresses: [IPAddress] = [IPAddress("192.168.1.10")!]
    private(set) var dummy: [String: Set<IPAddress>] = [:]

    func prepareDummyInterface(named name: String) throws -> Set<IPAddress> {
        dummy[name, default: []]
    }

    func bind(_ addresses: Set<IPAddress>, toInterface name: String) throws -> (added: Int, removed: Int) {
        let current = dummy[name, default: []]
        dummy[name] = addresses
        return (addresses.subtracting(current).count, current.subtracting(addresses).count)
    }

    func nodeAddresses(excludingInterface name: String) throws -> [IPAddress] { nodeAddresses }

    func removeInterface(named name: String) throws { dummy[name] = nil }

    func addresses(onInterface name: String) throws -> Set<IPAddress> { dummy[name] ?? [] }
}

/// A source that hands out whatever state it was last given.
final class StaticSource: ClusterSource {
    var state: ClusterState? {
        didSet { fresh = true }
    }
    private var fresh = false

    var name: String { "static" }

    func poll() -> Result<ClusterState, LoadError>? {
        guard fresh, let state else { return nil }
        fresh = false
        return .success(state)
    }
}
