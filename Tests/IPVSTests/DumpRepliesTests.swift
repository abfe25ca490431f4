import Netlink
import Testing
@testable import IPVS

#if canImport(Glibc)
import Glibc
#endif

/// A dump reply that cannot be read is an error naming it, never a virtual server left out.
@Suite struct DumpRepliesTests {
    let family: UInt16 = 0x24
    let vip = VirtualServerKey.service(.tcp, IPAddress("10.96.0.10")!, 80)

    /// A reply as the kernel sends it: the request's attributes under a GET_SERVICE header.
    func reply(_ server: VirtualServer) -> NetlinkMessage {
        let batch = MessageBatch()
        IPVSCodec.encode(.addVirtualServer(server), family: family, flags: NetlinkFlags.request, sequence: 1, into: batch)
        return NetlinkMessage(type: family, flags: 2, sequence: 1, portID: 0, payload: Array(batch.bytes[16...]))
    }

    func decode(_ messages: [NetlinkMessage]) throws -> [VirtualServerStatus] {
        var replies = DumpReplies<VirtualServerStatus>(nested: Wire.Top.service, what: "virtual server")
        for message in messages { replies.add(message, IPVSCodec.decodeService(message.genericAttributes)) }
        return try replies.values(operation: "list virtual servers")
    }

    @Test func readableRepliesAreTheValues() throws {
        let servers = [VirtualServer(key: vip, scheduler: "rr"), VirtualServer(key: .firewallMark(.inet6, 7), scheduler: "sh")]
        #expect(try decode(servers.map(reply)).map(\.server) == servers)
        #expect(try decode([]).isEmpty)
    }

    /// A protocol kipvs has no name for (here 50, ESP), a missing address family, a reply with no
    /// service at all: each named, with the count, after the whole dump was read.
    @Test func unreadableRepliesAreAnError() throws {
        var esp = reply(VirtualServer(key: vip, scheduler: "rr")).payload
        esp[4 + 4 + 8 + 4] = 50  // SVC_ATTR_PROTOCOL: the first byte of its u16 value
        let messages = [
            reply(VirtualServer(key: vip, scheduler: "rr")),
            NetlinkMessage(type: family, flags: 2, sequence: 1, portID: 0, payload: esp),
            NetlinkMessage(type: family, flags: 2, sequence: 1, portID: 0, payload: [1, 1, 0, 0, 8, 0, 9, 0, 1, 2, 3, 4]),
        ]
        #expect(IPVSCodec.decodeService(messages[1].genericAttributes) == nil, "the test's reply is unreadable")
        do {
            _ = try decode(messages)
            Issue.record("no error")
        } catch let error as IPVSError {
            #expect(error.errno == .badMessage)
            #expect(error.underlying.operation
                == "list virtual servers: 2 of 3 replies are no virtual server kipvs can read: reply 2: attributes 1 2 3 4 6 7 8 9 in nested attribute 1, 88 bytes (and 1 more)")
        }
    }

    @Test func aReplyWithoutTheNestedObjectSaysWhatItHolds() {
        let message = NetlinkMessage(type: family, flags: 2, sequence: 1, portID: 0, payload: [1, 1, 0, 0, 8, 0, 9, 0, 1, 2, 3, 4])
        #expect(DumpReplies<Int>.shape(of: message, nested: Wire.Top.service) == "no nested attribute 1; attributes 9")
    }
}
