import IPVS
import NFTables

/// How kipvs tells pod traffic from other traffic (kube-proxy's `--detect-local-mode`).
public enum LocalTrafficDetector: Hashable, Sendable {
    /// No way to tell: cluster IPs are masqueraded only with `--masquerade-all`.
    case none
    /// Sources inside `--cluster-cidr` are pods.
    case clusterCIDR([CIDR])
    /// Packets arriving on interfaces whose names start with one of these are from pods.
    case interfaceNamePrefix([String])
    /// Packets arriving on this bridge are from pods.
    case bridgeInterface(String)
}

/// The choices that shape the rules themselves; Services only change set elements.
public struct PacketFilterConfig: Hashable, Sendable {
    public var table: TableName
    public var localTraffic: LocalTrafficDetector
    /// `--masquerade-all`: masquerade every packet to a cluster IP.
    public var masqueradeAll: Bool

    public init(table: TableName = TableName(.inet, "kipvs"), localTraffic: LocalTrafficDetector = .none,
                masqueradeAll: Bool = false) {
        self.table = table
        self.localTraffic = localTraffic
        self.masqueradeAll = masqueradeAll
    }
}

/// The table kipvs owns: fixed chains and rules, and sets whose elements follow the Services.
///
/// Masquerading is decided by a conntrack mark bit, not a packet mark: the packet mark of an
/// in-cluster connection to an `externalTrafficPolicy: Local` Service is the whole firewall mark
/// IPVS looks its virtual server up by, so no bit of it is free.
public struct Ruleset: Hashable, Sendable {
    public var chains: [Chain]
    public var sets: [SetSpec]
    public var rules: [NFTables.Rule]

    /// The conntrack mark bit that asks for masquerading, as kube-proxy's `--iptables-masquerade-bit` 14.
    public static let masqueradeBit: UInt32 = 0x4000

    public init(_ config: PacketFilterConfig) {
        var builder = RulesetBuilder(config: config)
        builder.build()
        self = Ruleset(chains: builder.chains, sets: builder.sets, rules: builder.rules)
    }

    init(chains: [Chain], sets: [SetSpec], rules: [NFTables.Rule]) {
        self.chains = chains
        self.sets = sets
        self.rules = rules
    }

    /// Whether `snapshot` holds these chains, sets and rules (elements aside).
    public func matches(_ snapshot: TableSnapshot) -> Bool {
        // Rules compare chain by chain: only their order within a chain means anything.
        Set(snapshot.chains) == Set(chains) && Set(snapshot.sets) == Set(sets)
            && Dictionary(grouping: snapshot.rules, by: \.chain) == Dictionary(grouping: rules, by: \.chain)
    }
}

/// Set names, one per address family where the key holds an address.
public enum PacketFilterSet {
    public static let transportProtocols = "transport-protocols"
    public static let healthCheckPorts = "health-check-ports"

    public static func clusterIPs(_ family: IPAddress.Family) -> String { "cluster-ips" + suffix(family) }
    public static func external(_ family: IPAddress.Family) -> String { "external" + suffix(family) }
    public static func inClusterMarks(_ family: IPAddress.Family) -> String { "local-policy-marks" + suffix(family) }
    public static func firewall(_ family: IPAddress.Family) -> String { "firewall" + suffix(family) }
    public static func firewallAllow(_ family: IPAddress.Family) -> String { "firewall-allow" + suffix(family) }
    public static func services(_ family: IPAddress.Family) -> String { "services" + suffix(family) }
    public static func vips(_ family: IPAddress.Family) -> String { "vips" + suffix(family) }
    public static func hairpin(_ family: IPAddress.Family) -> String { "hairpin" + suffix(family) }

    static func suffix(_ family: IPAddress.Family) -> String { family == .inet ? "-v4" : "-v6" }
}

private struct RulesetBuilder {
    let config: PacketFilterConfig
    var chains: [Chain] = []
    var sets: [SetSpec] = []
    var rules: [NFTables.Rule] = []

    static let families: [IPAddress.Family] = [.inet, .inet6]

    mutating func build() {
        chains = [
            Chain(name: "nat-prerouting", hook: ChainHook(type: .nat, hook: .prerouting, priority: ChainHook.dstnat)),
            Chain(name: "nat-output", hook: ChainHook(type: .nat, hook: .output, priority: ChainHook.dstnat)),
            Chain(name: "nat-postrouting", hook: ChainHook(type: .nat, hook: .postrouting, priority: ChainHook.srcnat)),
            // Before nat and before IPVS, which takes node-originated packets at LOCAL_OUT priority -98.
            Chain(name: "filter-prerouting", hook: ChainHook(type: .filter, hook: .prerouting, priority: ChainHook.dstnat - 10)),
            Chain(name: "filter-output", hook: ChainHook(type: .filter, hook: .output, priority: ChainHook.dstnat - 10)),
            // Before IPVS, which takes packets for virtual servers at LOCAL_IN priority 98.
            Chain(name: "filter-input", hook: ChainHook(type: .filter, hook: .input, priority: ChainHook.filter)),
            Chain(name: "mark-for-masquerade"),
            Chain(name: "firewall-check"),
        ]
        sets = [
            SetSpec(name: PacketFilterSet.transportProtocols, key: [.inetProtocol]),
            SetSpec(name: PacketFilterSet.healthCheckPorts, key: [.inetService]),
        ]
        for family in Self.families {
            let address: SetField = family == .inet ? .ipv4Address : .ipv6Address
            let service: [SetField] = [address, .inetProtocol, .inetService]
            sets += [
                SetSpec(name: PacketFilterSet.clusterIPs(family), key: service),
                SetSpec(name: PacketFilterSet.external(family), key: service),
                SetSpec(name: PacketFilterSet.inClusterMarks(family), key: service, data: .mark),
                SetSpec(name: PacketFilterSet.firewall(family), key: service),
                SetSpec(name: PacketFilterSet.firewallAllow(family), key: service + [address], interval: true),
                SetSpec(name: PacketFilterSet.services(family), key: service),
                SetSpec(name: PacketFilterSet.vips(family), key: [address]),
                SetSpec(name: PacketFilterSet.hairpin(family), key: [address, address]),
            ]
        }

        rules.append(NFTables.Rule(chain: "mark-for-masquerade", [
            .ct(.mark, into: .first),
            .bitwise(into: .first, from: .first, mask: hostOrder(~Ruleset.masqueradeBit), xor: hostOrder(Ruleset.masqueradeBit)),
            .setCT(.mark, from: .first),
        ]))
        rules.append(NFTables.Rule(chain: "nat-postrouting", [
            .ct(.mark, into: .first),
            .bitwise(into: .first, from: .first, mask: hostOrder(Ruleset.masqueradeBit), xor: hostOrder(0)),
            .compare(.neq, .first, hostOrder(0)),
            .masquerade(fullyRandom: true),
        ], comment: "masquerade marked connections"))

        for family in Self.families {
            natRules(family)
        }
        for family in Self.families {
            let f = Fields(family)
            rules.append(NFTables.Rule(chain: "nat-postrouting", f.nfproto + [
                .payload(base: .network, offset: f.sourceOffset, length: f.addressLength, into: .first),
                .payload(base: .network, offset: f.destinationOffset, length: f.addressLength, into: f.afterAddress),
                .lookup(set: PacketFilterSet.hairpin(family), from: .first, into: nil, inverted: false),
                .masquerade(fullyRandom: false),
            ], comment: "hairpin: a pod reached itself through a Service"))
        }

        for chain in ["filter-prerouting", "filter-output"] {
            rules.append(NFTables.Rule(chain: chain, ctStateNew + [.verdict(.jump("firewall-check"))]))
        }
        for family in Self.families {
            let f = Fields(family)
            rules.append(NFTables.Rule(chain: "firewall-check", f.nfproto + f.serviceKey + [
                .lookup(set: PacketFilterSet.firewall(family), from: .first, into: nil, inverted: false),
                .payload(base: .network, offset: f.sourceOffset, length: f.addressLength, into: f.afterServiceKey),
                .lookup(set: PacketFilterSet.firewallAllow(family), from: .first, into: nil, inverted: true),
                .verdict(.drop),
            ], comment: "loadBalancerSourceRanges"))
        }

        for family in Self.families {
            let f = Fields(family)
            rules.append(NFTables.Rule(chain: "filter-input", ctStateNew + f.nfproto + [
                .meta(.l4proto, into: .first),
                .lookup(set: PacketFilterSet.transportProtocols, from: .first, into: nil, inverted: false),
                .payload(base: .network, offset: f.destinationOffset, length: f.addressLength, into: .first),
                .lookup(set: PacketFilterSet.vips(family), from: .first, into: nil, inverted: false),
            ] + f.serviceKey + [
                .lookup(set: PacketFilterSet.services(family), from: .first, into: nil, inverted: true),
                .payload(base: .transport, offset: 2, length: 2, into: .first),
                .lookup(set: PacketFilterSet.healthCheckPorts, from: .first, into: nil, inverted: true),
                // NFT_REJECT_ICMPX_UNREACH, NFT_REJECT_ICMPX_PORT_UNREACH: "connection refused" in either family.
                .reject(type: 2, code: 1),
            ], comment: "no Service on this virtual IP and port"))
        }
    }

    /// Masquerade marks and in-cluster firewall marks, for packets from outside or from pods
    /// (prerouting) and from the node itself (output).
    mutating func natRules(_ family: IPAddress.Family) {
        let f = Fields(family)
        let masquerade: [Expression] = [.verdict(.jump("mark-for-masquerade"))]
        let lookupClusterIPs: [Expression] = f.nfproto + f.serviceKey
            + [.lookup(set: PacketFilterSet.clusterIPs(family), from: .first, into: nil, inverted: false)]
        let lookupExternal: [Expression] = f.nfproto + f.serviceKey
            + [.lookup(set: PacketFilterSet.external(family), from: .first, into: nil, inverted: false)]
        let mark: [Expression] = f.serviceKey + [
            .lookup(set: PacketFilterSet.inClusterMarks(family), from: .first, into: .first, inverted: false),
            .setMeta(.mark, from: .first),
        ]

        // Outside clients and pods.
        if config.masqueradeAll {
            rules.append(NFTables.Rule(chain: "nat-prerouting", lookupClusterIPs + masquerade, comment: "cluster IPs, --masquerade-all"))
        } else if let notPod = notFromPod(f) {
            rules.append(NFTables.Rule(chain: "nat-prerouting", lookupClusterIPs + notPod + masquerade,
                              comment: "cluster IPs from outside the cluster"))
        }
        rules.append(NFTables.Rule(chain: "nat-prerouting", lookupExternal + masquerade, comment: "external traffic policy Cluster"))
        for pod in fromPod(f) {
            rules.append(NFTables.Rule(chain: "nat-prerouting", f.nfproto + pod + mark,
                              comment: "pods use every endpoint of a Local-policy Service"))
        }

        // The node itself: its source address may be a virtual IP that other nodes hold too.
        rules.append(NFTables.Rule(chain: "nat-output", lookupClusterIPs + masquerade, comment: "cluster IPs from the node"))
        rules.append(NFTables.Rule(chain: "nat-output", lookupExternal + masquerade, comment: "external traffic policy Cluster"))
        rules.append(NFTables.Rule(chain: "nat-output", f.nfproto + mark + masquerade,
                          comment: "the node uses every endpoint of a Local-policy Service"))
    }

    /// Conditions that hold for packets from pods, one rule's worth each (any one suffices).
    func fromPod(_ f: Fields) -> [[Expression]] {
        switch config.localTraffic {
        case .none:
            return []
        case .clusterCIDR(let cidrs):
            return cidrs.filter { $0.address.family == f.family }.map { f.source(in: $0, .eq) }
        case .interfaceNamePrefix(let prefixes):
            return prefixes.map { [.meta(.iifname, into: .first), .compare(.eq, .first, Array($0.utf8))] }
        case .bridgeInterface(let name):
            return [[.meta(.iifname, into: .first), .compare(.eq, .first, ifname(name))]]
        }
    }

    /// Conditions that together hold for packets not from pods; nil when pods cannot be told apart.
    func notFromPod(_ f: Fields) -> [Expression]? {
        switch config.localTraffic {
        case .none:
            return nil
        case .clusterCIDR(let cidrs):
            let mine = cidrs.filter { $0.address.family == f.family }
            return mine.isEmpty ? nil : mine.flatMap { f.source(in: $0, .neq) }
        case .interfaceNamePrefix(let prefixes):
            return prefixes.flatMap { [Expression.meta(.iifname, into: .first), .compare(.neq, .first, Array($0.utf8))] }
        case .bridgeInterface(let name):
            return [.meta(.iifname, into: .first), .compare(.neq, .first, ifname(name))]
        }
    }

    /// `ct state new`.
    var ctStateNew: [Expression] {
        [
            .ct(.state, into: .first),
            // NF_CT_STATE_BIT(IP_CT_NEW)
            .bitwise(into: .first, from: .first, mask: hostOrder(0x08), xor: hostOrder(0)),
            .compare(.neq, .first, hostOrder(0)),
        ]
    }

    /// An interface name as the kernel compares it: NUL-padded to IFNAMSIZ.
    func ifname(_ name: String) -> [UInt8] {
        Array(name.utf8.prefix(15)) + [UInt8](repeating: 0, count: 16 - min(name.utf8.count, 15))
    }
}

/// Where the fields of one address family are, and the expressions that load them.
struct Fields {
    let family: IPAddress.Family

    init(_ family: IPAddress.Family) { self.family = family }

    var addressLength: UInt32 { family == .inet ? 4 : 16 }
    var sourceOffset: UInt32 { family == .inet ? 12 : 8 }
    var destinationOffset: UInt32 { family == .inet ? 16 : 24 }
    /// The register after an address loaded into the first one.
    var afterAddress: Register { .first.advanced(by: Int(addressLength / 4)) }
    /// The register after `serviceKey`.
    var afterServiceKey: Register { afterAddress.advanced(by: 2) }

    /// `meta nfproto ipv4|ipv6`: an inet table sees both families.
    var nfproto: [Expression] {
        // NFPROTO_IPV4, NFPROTO_IPV6
        [.meta(.nfproto, into: .first), .compare(.eq, .first, [family == .inet ? 2 : 10])]
    }

    /// `ip daddr . meta l4proto . th dport` into consecutive registers from the first.
    var serviceKey: [Expression] {
        [
            .payload(base: .network, offset: destinationOffset, length: addressLength, into: .first),
            .meta(.l4proto, into: afterAddress),
            .payload(base: .transport, offset: 2, length: 2, into: afterAddress.advanced(by: 1)),
        ]
    }

    /// `ip saddr (==|!=) CIDR`.
    func source(in cidr: CIDR, _ op: Expression.CompareOperator) -> [Expression] {
        let bits = cidr.prefixLength
        let mask = (0..<Int(addressLength)).map { index -> UInt8 in
            let kept = min(max(bits - index * 8, 0), 8)
            return kept == 0 ? 0 : ~UInt8(0xff >> kept)
        }
        return [
            .payload(base: .network, offset: sourceOffset, length: addressLength, into: .first),
            .bitwise(into: .first, from: .first, mask: mask, xor: [UInt8](repeating: 0, count: mask.count)),
            .compare(op, .first, cidr.address.bytes),
        ]
    }
}

/// A 32-bit value as registers hold marks and conntrack state: host byte order.
func hostOrder(_ value: UInt32) -> [UInt8] {
    (0..<4).map { UInt8(truncatingIfNeeded: value.littleEndian >> (8 * $0)) }
}
