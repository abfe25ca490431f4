import IPVS

/// `kipvs status`: the table as `ipvsadm -L -n` prints it, in ipvsadm's order and column widths.
public enum ListFormat {
    /// Which of `ipvsadm -L`'s column sets to print.
    public enum Columns: Sendable, CaseIterable {
        /// `ipvsadm -L -n`: forwarding method, weight, active and inactive connections.
        case connections
        /// `--stats`: connection, packet and byte counters, abbreviated with K/M/G/T.
        case stats
        /// `--rate`: the per-second estimates.
        case rate
        /// `--thresholds`: upper and lower connection thresholds.
        case thresholds
        /// `--persistent-conn`: weight and persistent connection templates.
        case persistentConnections
    }

    /// `table` is in any order, typically the kernel's dump order, as `IPVSHandle.table()` returns it.
    public static func render(info: IPVSInfo, table: [(VirtualServerStatus, [RealServerStatus])],
                              columns: Columns = .connections) -> String {
        var out = header(info) + "\n" + title(columns)
        for (service, reals) in IpvsadmOrder.sorted(table) {
            out += serviceLine(service, columns) + "\n"
            for real in reals {
                out += realServerLine(real, columns) + "\n"
            }
        }
        return out
    }

    /// ipvsadm `list_all`.
    static func header(_ info: IPVSInfo) -> String {
        let v = info.version
        return "IP Virtual Server version \((v >> 16) & 0xff).\((v >> 8) & 0xff).\(v & 0xff)"
            + " (size=\(Int32(bitPattern: info.connectionTableSize)))"
    }

    /// ipvsadm `print_title`.
    static func title(_ columns: Columns) -> String {
        let service = "Prot LocalAddress:Port"
        let realServer = "  -> RemoteAddress:Port"
        switch columns {
        case .connections:
            return "\(service) Scheduler Flags\n\(realServer)           Forward Weight ActiveConn InActConn\n"
        case .stats:
            return left(service, 33) + ["Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"].map { " " + right($0, 8) }.joined()
                + "\n\(realServer)\n"
        case .rate:
            return left(service, 33) + ["CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"].map { " " + right($0, 8) }.joined()
                + "\n\(realServer)\n"
        case .thresholds:
            return left(service, 33) + ["Uthreshold", "Lthreshold", "ActiveConn", "InActConn"].map { " " + left($0, 10) }.joined()
                + "\n\(realServer)\n"
        case .persistentConnections:
            return left(service, 33) + " " + left("Weight", 9) + " " + left("PersistConn", 11) + " "
                + left("ActiveConn", 10) + " " + left("InActConn", 10) + "\n\(realServer)\n"
        }
    }

    /// ipvsadm `print_service_entry` without `FMT_RULE`.
    static func serviceLine(_ status: VirtualServerStatus, _ columns: Columns) -> String {
        let name = serviceName(status.server.key)
        let s = status.statistics
        switch columns {
        case .stats:
            return left(name, 33) + [s.connections, s.packetsIn, s.packetsOut, s.bytesIn, s.bytesOut].map(abbreviated).joined()
        case .rate:
            return left(name, 33)
                + [s.connectionsPerSecond, s.packetsInPerSecond, s.packetsOutPerSecond, s.bytesInPerSecond,
                   s.bytesOutPerSecond].map(abbreviated).joined()
        case .connections, .thresholds, .persistentConnections:
            return name + " " + serviceDetails(status.server)
        }
    }

    /// `rr (flag-1) persistent 300 mask 255.255.255.0 pe sip ops`.
    static func serviceDetails(_ server: VirtualServer) -> String {
        var text = server.scheduler
        if !server.flags.isDisjoint(with: IpvsadmText.schedulerFlagBits) {
            text += " (" + IpvsadmText.schedulerFlags(server) + ")"
        }
        if server.isPersistent {
            text += " persistent \(server.timeout)"
            if let mask = IpvsadmText.netmaskIfNotDefault(server) { text += " mask \(mask)" }
            // Unlike `-S`, `-L` shows the engine only for persistent services.
            if let engine = server.persistenceEngine, !engine.isEmpty { text += " pe \(engine)" }
        }
        if server.flags.contains(.onePacket) { text += " ops" }
        return text
    }

    /// `TCP  10.96.0.10:80`, `FWM  7 IPv6`: the protocol padded to four columns.
    static func serviceName(_ key: VirtualServerKey) -> String {
        switch key {
        case .service(let proto, let address, let port):
            left(proto.description, 4) + " " + Endpoint.format(address, port)
        case .firewallMark(let family, let mark):
            family == .inet6 ? "FWM  \(mark) IPv6" : "FWM  \(mark)"
        }
    }

    /// ipvsadm `print_service_entry`, the real-server loop.
    static func realServerLine(_ status: RealServerStatus, _ columns: Columns) -> String {
        let real = status.server
        let name = "  -> " + left(real.key.description, 28)
        let s = status.statistics
        switch columns {
        case .connections:
            return name + " " + left(forwardingName(real.forwarding), 7) + " " + left(String(real.weight), 6)
                + " " + left(String(status.activeConnections), 10) + " " + left(String(status.inactiveConnections), 10)
        case .stats:
            return name + [s.connections, s.packetsIn, s.packetsOut, s.bytesIn, s.bytesOut].map(abbreviated).joined()
        case .rate:
            // ipvsadm prints the three smaller rates unabbreviated, eight wide.
            return name + [s.connectionsPerSecond, s.packetsInPerSecond, s.packetsOutPerSecond].map { " " + right(String($0), 8) }.joined()
                + abbreviated(s.bytesInPerSecond) + abbreviated(s.bytesOutPerSecond)
        case .thresholds:
            return name + [real.upperThreshold, real.lowerThreshold, status.activeConnections, status.inactiveConnections]
                .map { " " + left(String($0), 10) }.joined()
        case .persistentConnections:
            // The weight is an int printed with %u.
            return name + " " + left(String(UInt32(bitPattern: real.weight)), 9)
                + " " + left(String(status.persistentConnections), 11)
                + " " + left(String(status.activeConnections), 10) + " " + left(String(status.inactiveConnections), 10)
        }
    }

    /// ipvsadm `fwd_name`. It has no name for bypass, and glibc prints the NULL as `(null)`.
    static func forwardingName(_ method: ForwardingMethod) -> String {
        method == .bypass ? "(null)" : method.name
    }

    /// ipvsadm `print_largenum`: nine columns, switching to thousands, millions, billions or
    /// trillions (with a suffix letter) once a number no longer fits comfortably.
    static func abbreviated(_ number: UInt64) -> String {
        switch number {
        case ..<100_000_000: right(String(number), 9)
        case ..<1_000_000_000: right(String(number / 1_000), 8) + "K"
        case ..<100_000_000_000: right(String(number / 1_000_000), 8) + "M"
        case ..<100_000_000_000_000: right(String(number / 1_000_000_000), 8) + "G"
        default: right(String(number / 1_000_000_000_000), 8) + "T"
        }
    }

    /// printf `%-Ns`: never truncates.
    private static func left(_ text: String, _ width: Int) -> String {
        text + String(repeating: " ", count: max(0, width - text.count))
    }

    /// printf `%Ns`.
    private static func right(_ text: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - text.count)) + text
    }
}
