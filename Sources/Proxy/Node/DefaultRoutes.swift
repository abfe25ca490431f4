import IPVS

/// Which interfaces hold the node's default routes, read from the kernel's route tables as
/// `/proc/net/route` and `/proc/net/ipv6_route` print them. `nodePortAddresses: primary` means
/// the addresses of these interfaces: the ones the node reaches the rest of the network from.
public enum DefaultRoutes {
    /// `RTF_UP`: the route is usable.
    private static let up: UInt32 = 0x0001
    /// `RTF_REJECT`: an unreachable route, such as the `lo` entry IPv6 keeps for `::/0`.
    private static let reject: UInt32 = 0x0200

    /// The interface of the IPv4 default route with the lowest metric, if any.
    public static func ipv4Interface(procNetRoute text: String) -> String? {
        var best: (metric: UInt32, name: String)?
        // Iface Destination Gateway Flags RefCnt Use Metric Mask ...; addresses in hex.
        for line in text.split(separator: "\n").dropFirst() {
            let f = line.split(whereSeparator: { $0 == "\t" || $0 == " " })
            guard f.count >= 8, let destination = UInt32(f[1], radix: 16), let flags = UInt32(f[3], radix: 16),
                  let metric = UInt32(f[6]), let mask = UInt32(f[7], radix: 16) else { continue }
            guard destination == 0, mask == 0, flags & up != 0, flags & reject == 0, f[0] != "lo" else { continue }
            if best.map({ metric < $0.metric }) ?? true { best = (metric, String(f[0])) }
        }
        return best?.name
    }

    /// The interface of the IPv6 default route with the lowest metric, if any.
    public static func ipv6Interface(procNetIPv6Route text: String) -> String? {
        var best: (metric: UInt32, name: String)?
        // destination, its prefix length, source, its prefix length, next hop, metric, refcount,
        // use, flags, interface; all in hex but the name.
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 10, let metric = UInt32(f[5], radix: 16), let flags = UInt32(f[8], radix: 16) else { continue }
            guard f[0].allSatisfy({ $0 == "0" }), f[1] == "00", flags & up != 0, flags & reject == 0, f[9] != "lo"
            else { continue }
            if best.map({ metric < $0.metric }) ?? true { best = (metric, String(f[9])) }
        }
        return best?.name
    }
}
