import HostNetwork

/// The sysctls an IPVS service proxy needs, as kube-proxy sets them.
public enum KernelSettings {
    /// (key, value, why)
    static func required(kernelRelease: String) -> [(String, String)] {
        var settings = [
            ("net.ipv4.ip_forward", "1"),  // masquerading real servers are forwarded to
            ("net.ipv4.vs.conntrack", "1"),  // keep conntrack entries so NAT and filters see IPVS traffic
            ("net.ipv4.vs.expire_nodest_conn", "1"),  // drop connections of deleted real servers at once
            ("net.ipv4.vs.expire_quiescent_template", "1"),  // affinity moves off weight-0 real servers
        ]
        // Before 5.9, reusing a source port with conntrack on could stall the first packet (kernel 35dfb013149f).
        if isOlder(kernelRelease, than: (5, 9)) { settings.append(("net.ipv4.vs.conn_reuse_mode", "0")) }
        return settings
    }

    static func isOlder(_ release: String, than version: (Int, Int)) -> Bool {
        let parts = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard parts.count == 2 else { return false }
        return (parts[0], parts[1]) < version
    }

    /// What kube-proxy also checks on a node but leaves to its administrator: each a line to log.
    public static func nodeWarnings() -> [String] {
        var warnings: [String] = []
        for family in ["iptables", "ip6tables"] {
            let key = "net.bridge.bridge-nf-call-\(family)"
            let value: String?
            do {
                value = try Sysctl.read(key)
            } catch {
                warnings.append("\(error)")
                continue
            }
            switch value {
            case nil:
                return ["br_netfilter is not loaded: Service traffic between pods on one bridge bypasses IPVS and nf_tables"]
            case "1":
                continue
            case let value?:
                warnings.append("\(key) is \(value), not 1: Service traffic between pods on one bridge bypasses IPVS and nf_tables")
            }
        }
        return warnings
    }

    /// Applies every setting; returns the ones that were changed, throws the first that cannot be written.
    @discardableResult
    public static func apply(kernelRelease: String) throws -> [String] {
        try required(kernelRelease: kernelRelease).compactMap { key, value in
            try Sysctl.ensure(key, value) ? "\(key)=\(value)" : nil
        }
    }
}
