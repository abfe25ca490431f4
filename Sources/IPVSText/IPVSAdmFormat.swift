import IPVS

/// IPVS operations written as the ipvsadm commands that would perform them, for `kipvs plan`:
/// `-A -t 10.96.0.10:80 -s rr`, `-a -t 10.96.0.10:80 -r 10.244.0.6:8080 -m -w 1`.
public enum IPVSAdmFormat {
    public static func commands(_ operations: [IPVSOperation]) -> String {
        operations.map(command).joined(separator: "\n")
    }

    public static func command(_ operation: IPVSOperation) -> String {
        switch operation {
        case .addVirtualServer(let server): "-A \(service(server.key)) \(options(server))"
        case .updateVirtualServer(let server): "-E \(service(server.key)) \(options(server))"
        case .deleteVirtualServer(let key): "-D \(service(key))"
        case .addRealServer(let key, let real): "-a \(service(key)) -r \(real.key) \(options(real))"
        case .updateRealServer(let key, let real): "-e \(service(key)) -r \(real.key) \(options(real))"
        case .deleteRealServer(let key, let real): "-d \(service(key)) -r \(real)"
        }
    }

    /// `-t 10.96.0.10:80`, `-u [fd00::a]:53`, `--sctp-service …`, `-f 7`.
    static func service(_ key: VirtualServerKey) -> String {
        switch key {
        case .service(let proto, let address, let port):
            let option = switch proto {
            case .tcp: "-t"
            case .udp: "-u"
            case .sctp: "--sctp-service"
            }
            return "\(option) \(Endpoint.format(address, port))"
        case .firewallMark(let family, let mark):
            return family == .inet6 ? "-f \(mark) -6" : "-f \(mark)"
        }
    }

    /// In ipvsadm's order; the netmask only matters, and is only shown, with persistence.
    static func options(_ server: VirtualServer) -> String {
        var parts = ["-s \(server.scheduler)"]
        if server.isPersistent {
            parts.append("-p \(server.timeout)")
            let defaultNetmask: UInt32 = server.key.family == .inet ? 0xffff_ffff : 128
            if server.netmask != defaultNetmask {
                parts.append("-M \(netmask(server.netmask, family: server.key.family))")
            }
        }
        if let engine = server.persistenceEngine, !engine.isEmpty { parts.append("--pe \(engine)") }
        if server.flags.contains(.onePacket) { parts.append("-o") }
        let schedulerFlags = schedulerFlagNames(server)
        if !schedulerFlags.isEmpty { parts.append("-b \(schedulerFlags.joined(separator: ","))") }
        return parts.joined(separator: " ")
    }

    static func options(_ real: RealServer) -> String {
        // ipvsadm's fwd_switch: local node is shown as gatewaying.
        let method = switch real.forwarding {
        case .masquerade: "-m"
        case .tunnel: "-i"
        case .directRoute, .localNode: "-g"
        case .bypass: "-?"
        }
        var parts = [method, "-w \(real.weight)"]
        if real.upperThreshold != 0 { parts.append("-x \(real.upperThreshold)") }
        if real.lowerThreshold != 0 { parts.append("-y \(real.lowerThreshold)") }
        return parts.joined(separator: " ")
    }

    /// ipvsadm names the scheduler flags after sh and mh, the only schedulers that read them.
    private static func schedulerFlagNames(_ server: VirtualServer) -> [String] {
        let prefix = ["sh", "mh"].contains(server.scheduler) ? server.scheduler : nil
        var names: [String] = []
        if server.flags.contains(.schedulerFallback) { names.append(prefix.map { "\($0)-fallback" } ?? "flag-1") }
        if server.flags.contains(.schedulerPort) { names.append(prefix.map { "\($0)-port" } ?? "flag-2") }
        if server.flags.contains(.scheduler3) { names.append("flag-3") }
        return names
    }

    /// IPv4 masks as dotted quads, IPv6 masks as prefix lengths.
    private static func netmask(_ value: UInt32, family: IPAddress.Family) -> String {
        guard family == .inet else { return "\(value)" }
        return [24, 16, 8, 0].map { "\((value >> UInt32($0)) & 0xff)" }.joined(separator: ".")
    }
}
