import HostNetwork
import IPVS

/// The node's interfaces as the agent needs them: the dummy interface that holds virtual IPs,
/// and the node's own addresses for NodePorts.
public protocol NodeNetwork: AnyObject {
    /// Creates the dummy interface if needed and returns the addresses bound on it.
    func prepareDummyInterface(named name: String) throws -> Set<IPAddress>
    /// Makes the dummy interface hold exactly `addresses`.
    func bind(_ addresses: Set<IPAddress>, toInterface name: String) throws -> (added: Int, removed: Int)
    /// Addresses of every interface but `name`, loopback and IPv6 link-local ones.
    func nodeAddresses(excludingInterface name: String) throws -> [IPAddress]
    func removeInterface(named name: String) throws
    /// The addresses on `name`, without creating it.
    func addresses(onInterface name: String) throws -> Set<IPAddress>
}

extension HostNetwork: NodeNetwork {
    public func prepareDummyInterface(named name: String) throws -> Set<IPAddress> {
        let index = try ensureDummyInterface(named: name)
        return Set(try addresses().filter { $0.interfaceIndex == index && !$0.address.isIPv6LinkLocal }.map(\.address))
    }

    public func bind(_ addresses: Set<IPAddress>, toInterface name: String) throws -> (added: Int, removed: Int) {
        try syncAddresses(onInterface: try ensureDummyInterface(named: name), to: addresses)
    }

    public func nodeAddresses(excludingInterface name: String) throws -> [IPAddress] {
        let excluded = try interfaceIndex(named: name)
        return try addresses()
            .filter { $0.interfaceIndex != excluded && !$0.address.isLoopback && !$0.address.isIPv6LinkLocal }
            .map(\.address)
    }

    public func removeInterface(named name: String) throws {
        try deleteInterface(named: name)
    }

    public func addresses(onInterface name: String) throws -> Set<IPAddress> {
        guard let index = try interfaceIndex(named: name) else { return [] }
        return Set(try addresses().filter { $0.interfaceIndex == index && !$0.address.isIPv6LinkLocal }.map(\.address))
    }
}

extension IPAddress {
    var isLoopback: Bool { isIPv4 ? high >> 56 == 127 : high == 0 && low == 1 }
}
