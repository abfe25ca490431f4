import IPVS
import Netlink

/// rtnetlink numbers (`<linux/rtnetlink.h>`, `<linux/if_link.h>`, `<linux/if_addr.h>`).
enum RouteWire {
    static let newLink: UInt16 = 16
    static let delLink: UInt16 = 17
    static let getLink: UInt16 = 18
    static let newAddress: UInt16 = 20
    static let delAddress: UInt16 = 21
    static let getAddress: UInt16 = 22

    static let linkName = 3  // IFLA_IFNAME
    static let linkInfo = 18  // IFLA_LINKINFO
    static let linkInfoKind = 1  // IFLA_INFO_KIND
    static let addressAddress = 1  // IFA_ADDRESS
    static let addressLocal = 2  // IFA_LOCAL

    static let interfaceUp: UInt32 = 1  // IFF_UP
    static let scopeHost: UInt8 = 254  // RT_SCOPE_HOST
    static let scopeUniverse: UInt8 = 0

    /// `struct ifinfomsg`: family, pad, type, index, flags, change.
    static func linkHeader(index: Int32 = 0, flags: UInt32 = 0, change: UInt32 = 0) -> [UInt8] {
        [0, 0, 0, 0] + le(UInt32(bitPattern: index)) + le(flags) + le(change)
    }

    /// `struct ifaddrmsg`: family, prefix length, flags, scope, index.
    static func addressHeader(family: UInt8, prefixLength: UInt8, scope: UInt8, index: Int32) -> [UInt8] {
        [family, prefixLength, 0, scope] + le(UInt32(bitPattern: index))
    }

    static func le(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24)] }
}

extension IPAddress {
    /// fe80::/10
    public var isIPv6LinkLocal: Bool { !isIPv4 && high >> 54 == 0x3fa }
}

/// An address on a local interface.
public struct InterfaceAddress: Hashable, Sendable {
    public var interfaceIndex: Int32
    public var address: IPAddress
    public var prefixLength: UInt8
}

/// Links and addresses of this network namespace, over rtnetlink.
public final class HostNetwork {
    let connection: NetlinkConnection

    public init() throws {
        connection = try NetlinkConnection(protocol: NetlinkProtocol.route, receiveBuffer: 1 << 20, sendBuffer: 1 << 20)
    }

    /// The index of the interface called `name`, or nil.
    public func interfaceIndex(named name: String) throws -> Int32? {
        try link(named: name)?.index
    }

    /// The interface's index and whether it is up, or nil when there is none.
    func link(named name: String) throws -> (index: Int32, isUp: Bool)? {
        do {
            let replies = try connection.request(operation: "look up interface \(name)") { batch, seq in
                batch.begin(type: RouteWire.getLink, flags: NetlinkFlags.request | NetlinkFlags.ack, sequence: seq,
                            familyHeader: RouteWire.linkHeader())
                batch.put(RouteWire.linkName, string: name)
                batch.end()
            }
            // ifinfomsg: family, pad, type, index at 4, flags at 8
            return replies.first.map { (Int32(bitPattern: $0.u32(at: 4)), $0.u32(at: 8) & RouteWire.interfaceUp != 0) }
        } catch let error as NetlinkError where error.errno == .noSuchDevice {
            return nil
        }
    }

    /// Creates the dummy interface if it is missing and brings it up if it is down; returns its
    /// index. Every sync calls this: when all is in place it is one request.
    @discardableResult
    public func ensureDummyInterface(named name: String) throws -> Int32 {
        let existing = try link(named: name)
        if let existing, existing.isUp { return existing.index }
        if existing == nil {
            _ = try connection.request(operation: "create dummy interface \(name)") { batch, seq in
                batch.begin(type: RouteWire.newLink,
                            flags: NetlinkFlags.request | NetlinkFlags.ack | NetlinkFlags.create | NetlinkFlags.exclusive,
                            sequence: seq, familyHeader: RouteWire.linkHeader())
                batch.put(RouteWire.linkName, string: name)
                batch.beginNest(RouteWire.linkInfo)
                batch.put(RouteWire.linkInfoKind, string: "dummy")
                batch.endNest()
                batch.end()
            }
        }
        guard let index = try interfaceIndex(named: name) else {
            throw NetlinkError(errno: .noSuchDevice, operation: "create dummy interface \(name)")
        }
        _ = try connection.request(operation: "bring up \(name)") { batch, seq in
            batch.begin(type: RouteWire.newLink, flags: NetlinkFlags.request | NetlinkFlags.ack, sequence: seq,
                        familyHeader: RouteWire.linkHeader(index: index, flags: RouteWire.interfaceUp, change: RouteWire.interfaceUp))
            batch.end()
        }
        return index
    }

    public func deleteInterface(named name: String) throws {
        guard let index = try interfaceIndex(named: name) else { return }
        _ = try connection.request(operation: "delete interface \(name)") { batch, seq in
            batch.begin(type: RouteWire.delLink, flags: NetlinkFlags.request | NetlinkFlags.ack, sequence: seq,
                        familyHeader: RouteWire.linkHeader(index: index))
            batch.end()
        }
    }

    /// Every address of every interface (one dump).
    public func addresses() throws -> [InterfaceAddress] {
        var out: [InterfaceAddress] = []
        try connection.dump(operation: "list addresses", build: { batch, seq in
            batch.begin(type: RouteWire.getAddress, flags: NetlinkFlags.request | NetlinkFlags.dump, sequence: seq,
                        familyHeader: RouteWire.addressHeader(family: 0, prefixLength: 0, scope: 0, index: 0))
            batch.end()
        }) { message in
            // ifaddrmsg: family, prefix length, flags, scope, index
            guard message.payloadCount >= 8, let family = IPAddress.Family(rawValue: UInt16(message.byte(at: 0))) else { return }
            let attributes = message.attributes(from: 8)
            // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on point-to-point links.
            guard let raw = attributes.bytes(RouteWire.addressLocal) ?? attributes.bytes(RouteWire.addressAddress),
                  let address = IPAddress(family: family, bytes: raw)
            else { return }
            out.append(InterfaceAddress(interfaceIndex: Int32(bitPattern: message.u32(at: 4)), address: address,
                                        prefixLength: message.byte(at: 1)))
        }
        return out
    }

    /// Adds and removes addresses on `interface` so that it holds exactly `desired` (as host routes).
    /// Returns how many were added and removed.
    @discardableResult
    public func syncAddresses(onInterface index: Int32, to desired: Set<IPAddress>) throws -> (added: Int, removed: Int) {
        // The kernel gives every interface an IPv6 link-local address of its own: not ours to remove.
        let current = Set(try addresses().filter { $0.interfaceIndex == index && !$0.address.isIPv6LinkLocal }.map(\.address))
        return try syncAddresses(onInterface: index, from: current, to: desired)
    }

    /// The same, given what the interface holds now (from a recent `addresses()`).
    @discardableResult
    public func syncAddresses(onInterface index: Int32, from current: Set<IPAddress>, to desired: Set<IPAddress>) throws
        -> (added: Int, removed: Int) {
        let add = desired.subtracting(current).sorted()
        let remove = current.subtracting(desired).sorted()
        let changes = add.map { (RouteWire.newAddress, $0) } + remove.map { (RouteWire.delAddress, $0) }
        let failures = try connection.perform(
            count: changes.count,
            operation: { i in "\(changes[i].0 == RouteWire.newAddress ? "add" : "remove") address \(changes[i].1)" },
            encode: { i, batch, seq, flags in
                let (type, address) = changes[i]
                let bits = UInt8(address.bytes.count * 8)
                let extra = type == RouteWire.newAddress ? NetlinkFlags.create | NetlinkFlags.replace : 0
                batch.begin(type: type, flags: flags | extra, sequence: seq,
                            familyHeader: RouteWire.addressHeader(family: UInt8(address.family.rawValue), prefixLength: bits,
                                                                  scope: RouteWire.scopeUniverse, index: index))
                let length = address.isIPv4 ? 4 : 16
                batch.put(RouteWire.addressLocal, high: address.high, low: address.low, count: length)
                batch.put(RouteWire.addressAddress, high: address.high, low: address.low, count: length)
                batch.end()
            })
        // Adding an address that is there, or removing one that is gone, is the wanted end state.
        if let first = failures.sorted(by: { $0.key < $1.key }).first(where: { $0.value.errno != .fileExists && $0.value.errno != .addressNotAvailable }) {
            throw first.value
        }
        let refusedRemovals = failures.keys.filter { $0 >= add.count }.count
        return (add.count - (failures.count - refusedRemovals), remove.count - refusedRemovals)
    }
}
