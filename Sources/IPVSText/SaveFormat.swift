import IPVS

/// The table as `ipvsadm -S -n` prints it: one `-A` line per virtual server, each followed by
/// one `-a` line per real server, in ipvsadm's order. `RuleParser` reads it back.
public enum SaveFormat {
    /// `table` is in any order, typically the kernel's dump order, as `IPVSHandle.table()` returns it.
    public static func render(_ table: [(VirtualServerStatus, [RealServerStatus])]) -> String {
        var out = ""
        for (service, reals) in IpvsadmOrder.sorted(table) {
            let name = serviceOption(service.server.key)
            out += addServiceLine(service.server, name: name) + "\n"
            for real in reals {
                out += addServerLine(real.server, serviceName: name) + "\n"
            }
        }
        return out
    }

    /// Streams the kernel's table to `out`: the virtual servers are read and sorted once, then each
    /// one's real servers are read, sorted and written, so memory stays that of one virtual server.
    public static func write(from ipvs: IPVSHandle, to out: inout some TextOutputStream) throws {
        let services = IpvsadmOrder.mergeSorted(try ipvs.virtualServers()) {
            IpvsadmOrder.compareServices($0.server.key, $1.server.key)
        }
        for service in services {
            let name = serviceOption(service.server.key)
            out.write(addServiceLine(service.server, name: name) + "\n")
            let reals = IpvsadmOrder.mergeSorted(try ipvs.realServers(of: service.server.key)) {
                IpvsadmOrder.compareRealServers($0.server.key, $1.server.key)
            }
            for real in reals {
                out.write(addServerLine(real.server, serviceName: name) + "\n")
            }
        }
    }

    /// ipvsadm `print_service_entry` with `FMT_RULE`: `-t 10.0.0.1:80`, `-f 7 -6`.
    static func serviceOption(_ key: VirtualServerKey) -> String {
        switch key {
        case .service(let proto, let address, let port):
            "\(protocolOption(proto)) \(Endpoint.format(address, port))"
        case .firewallMark(let family, let mark):
            family == .inet6 ? "-f \(mark) -6" : "-f \(mark)"
        }
    }

    /// ipvsadm `option_from_protocol`.
    static func protocolOption(_ proto: IPProtocol) -> String {
        switch proto {
        case .tcp: "-t"
        case .udp: "-u"
        case .sctp: "--sctp-service"
        }
    }

    /// ipvsadm `print_service_entry` with `FMT_RULE`, the virtual-server half.
    static func addServiceLine(_ server: VirtualServer, name: String) -> String {
        var line = "-A \(name) -s \(server.scheduler)"
        if server.isPersistent {
            line += " -p \(server.timeout)"
            if let mask = IpvsadmText.netmaskIfNotDefault(server) { line += " -M \(mask)" }
        }
        // Unlike `-L`, `-S` writes the engine whether or not the service is persistent.
        if let engine = server.persistenceEngine, !engine.isEmpty { line += " --pe \(engine)" }
        if server.flags.contains(.onePacket) { line += " -o" }
        if !server.flags.isDisjoint(with: IpvsadmText.schedulerFlagBits) {
            // ipvsadm prints `-b ` even when no name applies (flag-3 on sh or mh).
            line += " -b " + IpvsadmText.schedulerFlags(server)
        }
        return line
    }

    /// ipvsadm `print_service_entry` with `FMT_RULE`, the real-server half. Thresholds are not saved.
    static func addServerLine(_ real: RealServer, serviceName: String) -> String {
        let line = "-a \(serviceName) -r \(real.key) \(forwardingOption(real.forwarding)) -w \(real.weight)"
        // `print_tunnel_rule`: the kernel's tunnel type defaults to IPIP, the only one modelled here.
        return real.forwarding == .tunnel ? line + " --tun-type ipip" : line
    }

    /// ipvsadm `fwd_switch`. It has no switch for bypass, and glibc prints the NULL as `(null)`.
    static func forwardingOption(_ method: ForwardingMethod) -> String {
        switch method {
        case .masquerade: "-m"
        case .tunnel: "-i"
        case .localNode, .directRoute: "-g"
        case .bypass: "(null)"
        }
    }
}

/// Text pieces the save and list formats share.
enum IpvsadmText {
    static let schedulerFlagBits: VirtualServerFlags = [.schedulerFallback, .schedulerPort, .scheduler3]

    /// ipvsadm `print_sched_flags`: sh and mh name their own flags, other schedulers get `flag-N`.
    static func schedulerFlags(_ server: VirtualServer) -> String {
        let names: [(VirtualServerFlags, String)] =
            switch server.scheduler {
            case "sh": [(.schedulerFallback, "sh-fallback"), (.schedulerPort, "sh-port")]
            case "mh": [(.schedulerFallback, "mh-fallback"), (.schedulerPort, "mh-port")]
            default: [(.schedulerFallback, "flag-1"), (.schedulerPort, "flag-2"), (.scheduler3, "flag-3")]
            }
        return names.filter { server.flags.contains($0.0) }.map(\.1).joined(separator: ",")
    }

    /// The persistence mask as ipvsadm writes it, or nil for the per-client default (/32 or /128).
    static func netmaskIfNotDefault(_ server: VirtualServer) -> String? {
        switch server.key.family {
        case .inet:
            server.netmask == 0xffff_ffff ? nil : dottedQuad(server.netmask)
        case .inet6:
            server.netmask == 128 ? nil : String(Int32(bitPattern: server.netmask))
        }
    }

    /// `inet_ntoa` of a mask held as a host-order number.
    static func dottedQuad(_ value: UInt32) -> String {
        [24, 16, 8, 0].map { String((value >> UInt32($0)) & 0xff) }.joined(separator: ".")
    }
}

/// The order ipvsadm lists services and real servers in.
///
/// ipvsadm sorts with glibc `qsort`, which is a top-down merge sort, using `ipvs_cmp_services` and
/// `ipvs_cmp_dests` from libipvs. Those compare 32-bit words by unsigned subtraction read back as
/// `int`, so two addresses more than 2^31 apart compare backwards (10.0.0.1 sorts after
/// 192.168.0.1) and the comparison is not transitive. Copying both the comparisons and the merge
/// sort reproduces ipvsadm's order exactly, given the kernel's dump order as input.
enum IpvsadmOrder {
    static func sorted(_ table: [(VirtualServerStatus, [RealServerStatus])]) -> [(VirtualServerStatus, [RealServerStatus])] {
        mergeSorted(table) { compareServices($0.0.server.key, $1.0.server.key) }
            .map { ($0.0, mergeSorted($0.1) { compareRealServers($0.server.key, $1.server.key) }) }
    }

    /// libipvs `ipvs_cmp_services`: mark, family, protocol, address, port.
    static func compareServices(_ a: VirtualServerKey, _ b: VirtualServerKey) -> Int32 {
        let x = ServiceFields(a), y = ServiceFields(b)
        if x.mark != y.mark { return wrappingDifference(x.mark, y.mark) }
        if x.family != y.family { return Int32(x.family.rawValue) - Int32(y.family.rawValue) }
        if x.proto != y.proto { return Int32(x.proto) - Int32(y.proto) }
        let byAddress = compareAddresses(x.high, x.low, y.high, y.low, asFamily: x.family)
        return byAddress != 0 ? byAddress : Int32(x.port) - Int32(y.port)
    }

    /// libipvs `ipvs_cmp_dests`: address (read as the first one's family), then port.
    static func compareRealServers(_ a: RealServerKey, _ b: RealServerKey) -> Int32 {
        let byAddress = compareAddresses(a.address.high, a.address.low, b.address.high, b.address.low, asFamily: a.address.family)
        return byAddress != 0 ? byAddress : Int32(a.port) - Int32(b.port)
    }

    /// The fields of libipvs' `ipvs_service_entry_t` that the comparison reads.
    private struct ServiceFields {
        var mark: UInt32 = 0
        var family: IPAddress.Family
        var proto: UInt16 = 0
        var high: UInt64 = 0
        var low: UInt64 = 0
        var port: UInt16 = 0

        init(_ key: VirtualServerKey) {
            family = key.family
            switch key {
            case .service(let serviceProtocol, let serviceAddress, let servicePort):
                proto = serviceProtocol.rawValue
                (high, low) = (serviceAddress.high, serviceAddress.low)
                port = servicePort
            case .firewallMark(_, let firewallMark):
                mark = firewallMark
            }
        }
    }

    /// IPv6 compares four big-endian words, stopping at the first that differs; IPv4 compares one.
    private static func compareAddresses(_ aHigh: UInt64, _ aLow: UInt64, _ bHigh: UInt64, _ bLow: UInt64,
                                         asFamily family: IPAddress.Family) -> Int32 {
        let words = family == .inet6 ? 4 : 1
        for index in 0..<words {
            let r = wrappingDifference(word(aHigh, aLow, index), word(bHigh, bLow, index))
            if r != 0 { return r }
        }
        return 0
    }

    /// The `index`th 32-bit word of the address, in host order.
    private static func word(_ high: UInt64, _ low: UInt64, _ index: Int) -> UInt32 {
        let half = index < 2 ? high : low
        return UInt32(truncatingIfNeeded: index % 2 == 0 ? half >> 32 : half)
    }

    /// C's `int r = a - b` for two `u32`s.
    private static func wrappingDifference(_ a: UInt32, _ b: UInt32) -> Int32 {
        Int32(bitPattern: a &- b)
    }

    /// glibc `msort_with_tmp`: split with the smaller half first, merge taking the left element
    /// unless it compares greater than the right.
    static func mergeSorted<Element>(_ items: [Element], by compare: (Element, Element) -> Int32) -> [Element] {
        var items = items
        mergeSort(&items, 0..<items.count, by: compare)
        return items
    }

    private static func mergeSort<Element>(_ items: inout [Element], _ range: Range<Int>,
                                           by compare: (Element, Element) -> Int32) {
        guard range.count > 1 else { return }
        let middle = range.lowerBound + range.count / 2
        mergeSort(&items, range.lowerBound..<middle, by: compare)
        mergeSort(&items, middle..<range.upperBound, by: compare)

        var merged: [Element] = []
        merged.reserveCapacity(range.count)
        var left = range.lowerBound, right = middle
        while left < middle && right < range.upperBound {
            if compare(items[left], items[right]) <= 0 {
                merged.append(items[left])
                left += 1
            } else {
                merged.append(items[right])
                right += 1
            }
        }
        merged += items[left..<middle]
        merged += items[right..<range.upperBound]
        items.replaceSubrange(range, with: merged)
    }
}
