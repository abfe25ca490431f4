import IPVS
import NFTables

/// The elements of every set of the kipvs table, by set name.
public struct PacketFilterElements: Hashable, Sendable {
    public var sets: [String: Set<SetElement>]

    public init(sets: [String: Set<SetElement>] = [:]) {
        self.sets = sets
    }

    /// What the table's sets should hold for `desired`, with `vips` the addresses on the dummy interface.
    public init(_ desired: DesiredState, vips: Set<IPAddress>) {
        let path = desired.packetPath
        var sets: [String: Set<SetElement>] = [:]
        func insert(_ set: String, _ element: SetElement) { sets[set, default: []].insert(element) }

        // Constant, yet kept as elements so that the set definitions stay free of data.
        // One-field keys are not padded.
        for proto in IPProtocol.allCases {
            insert(PacketFilterSet.transportProtocols, SetElement(key: [UInt8(proto.rawValue)]))
        }
        for port in path.healthCheckNodePorts {
            insert(PacketFilterSet.healthCheckPorts, SetElement(key: [UInt8(port >> 8), UInt8(port & 0xff)]))
        }
        for target in path.clusterIPs {
            insert(PacketFilterSet.clusterIPs(target.address.family), SetElement(key: ElementKey.service(target)))
        }
        for target in path.external {
            insert(PacketFilterSet.external(target.address.family), SetElement(key: ElementKey.service(target)))
        }
        for (target, mark) in path.inClusterMarks {
            insert(PacketFilterSet.inClusterMarks(target.address.family),
                   SetElement(key: ElementKey.service(target), data: hostOrder(mark)))
        }
        for (target, ranges) in path.firewalls {
            let family = target.address.family
            insert(PacketFilterSet.firewall(family), SetElement(key: ElementKey.service(target)))
            // Two prefixes are nested or apart; nested ones would overlap, which an interval set refuses.
            let familyRanges = ranges.filter { $0.address.family == family }
            let outermost = familyRanges.filter { inner in
                !familyRanges.contains { $0 != inner && $0.prefixLength <= inner.prefixLength && $0.contains(inner.address) }
            }
            for range in Set(outermost) {
                insert(PacketFilterSet.firewallAllow(family),
                       SetElement(key: ElementKey.service(target) + range.address.bytes,
                                  keyEnd: ElementKey.service(target) + range.lastAddress.bytes))
            }
        }
        for key in desired.virtualServers.keys {
            guard case .service(let proto, let address, let port) = key else { continue }
            insert(PacketFilterSet.services(address.family), SetElement(key: ElementKey.service(ServiceAddress(address, proto, port))))
        }
        for address in vips {
            insert(PacketFilterSet.vips(address.family), SetElement(key: address.bytes))
        }
        for address in path.localEndpoints {
            insert(PacketFilterSet.hairpin(address.family), SetElement(key: address.bytes + address.bytes))
        }
        self.sets = sets
    }

    public var count: Int { sets.values.reduce(0) { $0 + $1.count } }
}

/// Set keys as the kernel stores them: fields in network order, each padded to 4 bytes.
public enum ElementKey {
    public static func protocolField(_ proto: IPProtocol) -> [UInt8] { [UInt8(proto.rawValue), 0, 0, 0] }
    public static func portField(_ port: UInt16) -> [UInt8] { [UInt8(port >> 8), UInt8(port & 0xff), 0, 0] }

    /// `address . protocol . port`
    public static func service(_ target: ServiceAddress) -> [UInt8] {
        target.address.bytes + protocolField(target.protocol) + portField(target.port)
    }
}

extension CIDR {
    /// The highest address in the prefix.
    var lastAddress: IPAddress {
        let bytes = address.bytes.enumerated().map { index, byte -> UInt8 in
            let kept = min(max(prefixLength - index * 8, 0), 8)
            return byte | (kept == 8 ? 0 : UInt8(0xff >> kept))
        }
        return IPAddress(family: address.family, bytes: bytes)!
    }
}
