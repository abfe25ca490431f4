// One datagram as the kernel could send it, split as the socket splits it; every message is read
// by every decoder kipvs has for replies: acks, attributes, IPVS virtual and real servers, conntrack
// entries, nf_tables chains, sets, set elements and rules.
import FuzzSupport
@testable import HostNetwork
@testable import IPVS
@testable import NFTables
@testable import Netlink

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let datagram = Array(UnsafeRawBufferPointer(start: start, count: count))
    var services = DumpReplies<VirtualServerStatus>(nested: Wire.Top.service, what: "virtual server")
    var reals = DumpReplies<RealServerStatus>(nested: Wire.Top.dest, what: "real server")
    for message in NetlinkMessage.messages(inDatagram: datagram) {
        use(message.errorCode)
        use(message.genericCommand)
        walk(message.genericAttributes, depth: 0)
        services.add(message, IPVSCodec.decodeService(message.genericAttributes))
        reals.add(message, IPVSCodec.decodeDest(message.genericAttributes, serviceFamily: message.flags & 1 == 0 ? .inet : .inet6))
        use(ConntrackWire.decode(message))
        // A refusal is an answer too: only a trap or a bad access is a finding.
        use(try? Libnftnl.parseChain(message))
        use(try? Libnftnl.parseSet(message))
        use(try? Libnftnl.parseElements(message))
        use(try? Libnftnl.parseRule(message))
    }
    use(Result { try services.values(operation: "list virtual servers") })
    use(Result { try reals.values(operation: "list real servers") })
    return 0
}

/// Reads every attribute every way, and nested ones as deep as a reply nests.
func walk(_ attributes: Attributes, depth: Int) {
    for entry in attributes.entries {
        let type = Int(entry.type)
        use((attributes.u8(type), attributes.u16(type), attributes.be16(type), attributes.u32(type), attributes.u64(type)))
        use((attributes.string(type), attributes.bytes(type)))
        if depth < 4, let nested = attributes.nested(type) { walk(nested, depth: depth + 1) }
    }
}

@main enum Main {
    static func main() { runFuzzer() }
}
