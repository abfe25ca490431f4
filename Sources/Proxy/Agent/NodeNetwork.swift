import HostNetwork
import IPVS

/// The node's addresses at one moment: what the dummy interface holds, and the node's own.
public struct NodeAddresses: Hashable, Sendable {
    /// nil when the dummy interface does not exist.
    public var dummyInterfaceIndex: Int32?
    /// On the dummy interface, without the kernel's own IPv6 link-local address.
    public var bound: Set<IPAddress>
    /// On every other interface, without loopback and IPv6 link-local addresses.
    public var node: [IPAddress]

    public init(dummyInterfaceIndex: Int32?, bound: Set<IPAddress>, node: [IPAddress]) {
        self.dummyInterfaceIndex = dummyInterfaceIndex
        self.bound = bound
        self.node = node
    }
}

/// The node's interfaces as the agent needs them: the dummy interface that holds virtual IPs,
/// and the node's own addresses for NodePorts. One address read serves a whole sync.
public protocol NodeNetwork: AnyObject {
    /// One look at the addresses; with `create`, the dummy interface is made (and brought up) first.
    func addresses(dummyInterface name: String, create: Bool) throws -> NodeAddresses
    /// Makes the dummy interface hold exactly `addresses`, given what it held in `current`.
    func bind(_ addresses: Set<IPAddress>, current: NodeAddresses) throws -> (added: Int, removed: Int)
    func removeInterface(named name: String) throws
    /// Adds and removes single addresses on the dummy interface, found at `index` by an earlier look
    /// that saw `bound` on it; `adding` and `removing` do not overlap.
    func changeAddresses(onInterface index: Int32, bound: Set<IPAddress>, adding: Set<IPAddress>,
                         removing: Set<IPAddress>) throws -> (added: Int, removed: Int)
}

extension NodeNetwork {
    public func changeAddresses(onInterface index: Int32, bound: Set<IPAddress>, adding: Set<IPAddress>,
                                removing: Set<IPAddress>) throws -> (added: Int, removed: Int) {
        try bind(bound.subtracting(removing).union(adding),
                 current: NodeAddresses(dummyInterfaceIndex: index, bound: bound, node: []))
    }
}

extension HostNetwork: NodeNetwork {
    public func addresses(dummyInterface name: String, create: Bool) throws -> NodeAddresses {
        let index = create ? try ensureDummyInterface(named: name) : try interfaceIndex(named: name)
        let all = try addresses().filter { !$0.address.isIPv6LinkLocal }
        return NodeAddresses(
            dummyInterfaceIndex: index,
            bound: Set(all.filter { $0.interfaceIndex == index }.map(\.address)),
            node: all.filter { $0.interfaceIndex != index && !$0.address.isLoopback }.map(\.address))
    }

    public func bind(_ addresses: Set<IPAddress>, current: NodeAddresses) throws -> (added: Int, removed: Int) {
        guard let index = current.dummyInterfaceIndex else { return (0, 0) }
        return try syncAddresses(onInterface: index, from: current.bound, to: addresses)
    }

    public func removeInterface(named name: String) throws {
        try deleteInterface(named: name)
    }

    public func changeAddresses(onInterface index: Int32, bound: Set<IPAddress>, adding: Set<IPAddress>,
                                removing: Set<IPAddress>) throws -> (added: Int, removed: Int) {
        try syncAddresses(onInterface: index, from: removing, to: adding)
    }
}

extension IPAddress {
    var isLoopback: Bool { isIPv4 ? high >> 56 == 127 : high == 0 && low == 1 }
}
