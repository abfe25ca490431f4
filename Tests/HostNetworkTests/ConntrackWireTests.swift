import CMnl
import IPVS
import Netlink
import Testing
@testable import HostNetwork

/// The Swift copies of the ctnetlink numbers must equal the kernel headers'.
@Suite struct ConntrackNumbersTests {
    @Test func numbersMatchTheHeaders() {
        #expect(ConntrackWire.netlinkProtocol == NETLINK_NETFILTER)
        #expect(Int32(ConntrackWire.subsystem) == NFNL_SUBSYS_CTNETLINK)
        #expect(UInt32(ConntrackWire.messageNew) == IPCTNL_MSG_CT_NEW.rawValue)
        #expect(UInt32(ConntrackWire.messageGet) == IPCTNL_MSG_CT_GET.rawValue)
        #expect(UInt32(ConntrackWire.messageDelete) == IPCTNL_MSG_CT_DELETE.rawValue)
        #expect(UInt32(ConntrackWire.tupleOriginal) == CTA_TUPLE_ORIG.rawValue)
        #expect(UInt32(ConntrackWire.tupleReply) == CTA_TUPLE_REPLY.rawValue)
        #expect(UInt32(ConntrackWire.id) == CTA_ID.rawValue)
        #expect(UInt32(ConntrackWire.zone) == CTA_ZONE.rawValue)
        #expect(UInt32(ConntrackWire.filter) == CTA_FILTER.rawValue)
        #expect(UInt32(ConntrackWire.tupleIP) == CTA_TUPLE_IP.rawValue)
        #expect(UInt32(ConntrackWire.tupleProto) == CTA_TUPLE_PROTO.rawValue)
        #expect(UInt32(ConntrackWire.ipV4Source) == CTA_IP_V4_SRC.rawValue)
        #expect(UInt32(ConntrackWire.ipV4Destination) == CTA_IP_V4_DST.rawValue)
        #expect(UInt32(ConntrackWire.ipV6Source) == CTA_IP_V6_SRC.rawValue)
        #expect(UInt32(ConntrackWire.ipV6Destination) == CTA_IP_V6_DST.rawValue)
        #expect(UInt32(ConntrackWire.protoNumber) == CTA_PROTO_NUM.rawValue)
        #expect(UInt32(ConntrackWire.protoSourcePort) == CTA_PROTO_SRC_PORT.rawValue)
        #expect(UInt32(ConntrackWire.protoDestinationPort) == CTA_PROTO_DST_PORT.rawValue)
        #expect(UInt32(ConntrackWire.filterOriginalFlags) == CTA_FILTER_ORIG_FLAGS.rawValue)
    }
}

/// Request bytes, one commented line per header or attribute.
@Suite struct ConntrackRequestTests {
    let flow = ConntrackEntry(
        original: ConntrackTuple(source: .v("10.0.0.1"), destination: .v("10.96.0.10"), protocolNumber: 17,
                                 sourcePort: 40002, destinationPort: 53),
        reply: ConntrackTuple(source: .v("10.244.2.5"), destination: .v("10.0.0.1"), protocolNumber: 17,
                              sourcePort: 53, destinationPort: 40002),
        id: 0x1234_5678)

    @Test func dumpAsksForOneFamilyAndProtocol() {
        let batch = MessageBatch()
        ConntrackWire.encodeDump(family: .inet, protocol: .udp, sequence: 1, into: batch)
        let expected: [UInt8] = [
            0x30, 0x00, 0x00, 0x00, 0x01, 0x01, 0x01, 0x03, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // nlmsghdr len=48 type=CTNETLINK<<8|CT_GET flags=REQUEST|DUMP seq=1
            0x02, 0x00, 0x00, 0x00,  // nfgenmsg family=AF_INET version=0 res_id=0
            0x10, 0x00, 0x01, 0x80,  // nest CTA_TUPLE_ORIG len=16, NLA_F_NESTED
            0x0c, 0x00, 0x02, 0x80,  // nest CTA_TUPLE_PROTO len=12
            0x05, 0x00, 0x01, 0x00, 0x11, 0x00, 0x00, 0x00,  // CTA_PROTO_NUM = 17 (UDP) + pad
            0x0c, 0x00, 0x19, 0x80,  // nest CTA_FILTER len=12
            0x08, 0x00, 0x01, 0x00, 0x08, 0x00, 0x00, 0x00,  // CTA_FILTER_ORIG_FLAGS = CTA_FILTER_F_CTA_PROTO_NUM
        ]
        #expect(batch.bytes == expected)
    }

    @Test func ipv6DumpDiffersOnlyInFamily() {
        let v4 = MessageBatch(), v6 = MessageBatch()
        ConntrackWire.encodeDump(family: .inet, protocol: .udp, sequence: 1, into: v4)
        ConntrackWire.encodeDump(family: .inet6, protocol: .udp, sequence: 1, into: v6)
        #expect(v6.bytes[16] == 0x0a)  // AF_INET6
        #expect(v6.bytes[..<16] == v4.bytes[..<16])
        #expect(v6.bytes[17...] == v4.bytes[17...])
    }

    @Test func deleteNamesTheOriginalTupleAndTheId() {
        let batch = MessageBatch()
        ConntrackWire.encodeDelete(flow, flags: NetlinkFlags.request | NetlinkFlags.ack, sequence: 7, into: batch)
        let expected: [UInt8] = [
            0x50, 0x00, 0x00, 0x00, 0x02, 0x01, 0x05, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // nlmsghdr len=80 type=CTNETLINK<<8|CT_DELETE flags=REQUEST|ACK seq=7
            0x02, 0x00, 0x00, 0x00,  // nfgenmsg family=AF_INET
            0x34, 0x00, 0x01, 0x80,  // nest CTA_TUPLE_ORIG len=52
            0x14, 0x00, 0x01, 0x80,  // nest CTA_TUPLE_IP len=20
            0x08, 0x00, 0x01, 0x00, 0x0a, 0x00, 0x00, 0x01,  // CTA_IP_V4_SRC = 10.0.0.1
            0x08, 0x00, 0x02, 0x00, 0x0a, 0x60, 0x00, 0x0a,  // CTA_IP_V4_DST = 10.96.0.10
            0x1c, 0x00, 0x02, 0x80,  // nest CTA_TUPLE_PROTO len=28
            0x05, 0x00, 0x01, 0x00, 0x11, 0x00, 0x00, 0x00,  // CTA_PROTO_NUM = 17 + pad
            0x06, 0x00, 0x02, 0x00, 0x9c, 0x42, 0x00, 0x00,  // CTA_PROTO_SRC_PORT = 40002, network order + pad
            0x06, 0x00, 0x03, 0x00, 0x00, 0x35, 0x00, 0x00,  // CTA_PROTO_DST_PORT = 53, network order + pad
            0x08, 0x00, 0x0c, 0x00, 0x12, 0x34, 0x56, 0x78,  // CTA_ID = 0x12345678, network order
        ]
        #expect(batch.bytes == expected)
    }

    @Test func ipv6DeleteInAZoneWithoutId() {
        let entry = ConntrackEntry(
            original: ConntrackTuple(source: .v("fd00::1"), destination: .v("fd00:96::a"), protocolNumber: 17,
                                     sourcePort: 40002, destinationPort: 53),
            reply: ConntrackTuple(source: .v("fd00:244::5"), destination: .v("fd00::1"), protocolNumber: 17,
                                  sourcePort: 53, destinationPort: 40002),
            zone: 5)
        let batch = MessageBatch()
        ConntrackWire.encodeDelete(entry, flags: NetlinkFlags.request, sequence: 8, into: batch)
        let expected: [UInt8] = [
            0x68, 0x00, 0x00, 0x00, 0x02, 0x01, 0x01, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // nlmsghdr len=104 flags=REQUEST seq=8
            0x0a, 0x00, 0x00, 0x00,  // nfgenmsg family=AF_INET6
            0x4c, 0x00, 0x01, 0x80,  // nest CTA_TUPLE_ORIG len=76
            0x2c, 0x00, 0x01, 0x80,  // nest CTA_TUPLE_IP len=44
            0x14, 0x00, 0x03, 0x00, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,  // CTA_IP_V6_SRC = fd00::1
            0x14, 0x00, 0x04, 0x00, 0xfd, 0, 0, 0x96, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a,  // CTA_IP_V6_DST = fd00:96::a
            0x1c, 0x00, 0x02, 0x80,  // nest CTA_TUPLE_PROTO len=28
            0x05, 0x00, 0x01, 0x00, 0x11, 0x00, 0x00, 0x00,  // CTA_PROTO_NUM = 17
            0x06, 0x00, 0x02, 0x00, 0x9c, 0x42, 0x00, 0x00,  // CTA_PROTO_SRC_PORT = 40002
            0x06, 0x00, 0x03, 0x00, 0x00, 0x35, 0x00, 0x00,  // CTA_PROTO_DST_PORT = 53
            0x06, 0x00, 0x12, 0x00, 0x00, 0x05, 0x00, 0x00,  // CTA_ZONE = 5, network order + pad
        ]
        #expect(batch.bytes == expected)
    }
}

/// Dump replies as the kernel writes them (`ctnetlink_fill_info`), decoded.
@Suite struct ConntrackReplyTests {
    /// The payload after `nlmsghdr` of one IPv4 UDP entry that IPVS sent to 10.244.2.5.
    static let udpEntry: [UInt8] = [
        0x02, 0x00, 0x00, 0x00,  // nfgenmsg family=AF_INET version=0 res_id=0
        0x34, 0x00, 0x01, 0x80,  // nest CTA_TUPLE_ORIG len=52
        0x14, 0x00, 0x01, 0x80,  // nest CTA_TUPLE_IP len=20
        0x08, 0x00, 0x01, 0x00, 0x0a, 0x00, 0x00, 0x01,  // CTA_IP_V4_SRC = 10.0.0.1
        0x08, 0x00, 0x02, 0x00, 0x0a, 0x60, 0x00, 0x0a,  // CTA_IP_V4_DST = 10.96.0.10
        0x1c, 0x00, 0x02, 0x80,  // nest CTA_TUPLE_PROTO len=28
        0x05, 0x00, 0x01, 0x00, 0x11, 0x00, 0x00, 0x00,  // CTA_PROTO_NUM = 17
        0x06, 0x00, 0x02, 0x00, 0x9c, 0x42, 0x00, 0x00,  // CTA_PROTO_SRC_PORT = 40002
        0x06, 0x00, 0x03, 0x00, 0x00, 0x35, 0x00, 0x00,  // CTA_PROTO_DST_PORT = 53
        0x34, 0x00, 0x02, 0x80,  // nest CTA_TUPLE_REPLY len=52
        0x14, 0x00, 0x01, 0x80,  // nest CTA_TUPLE_IP len=20
        0x08, 0x00, 0x01, 0x00, 0x0a, 0xf4, 0x02, 0x05,  // CTA_IP_V4_SRC = 10.244.2.5 (the real server)
        0x08, 0x00, 0x02, 0x00, 0x0a, 0x00, 0x00, 0x01,  // CTA_IP_V4_DST = 10.0.0.1
        0x1c, 0x00, 0x02, 0x80,  // nest CTA_TUPLE_PROTO len=28
        0x05, 0x00, 0x01, 0x00, 0x11, 0x00, 0x00, 0x00,  // CTA_PROTO_NUM = 17
        0x06, 0x00, 0x02, 0x00, 0x1f, 0x90, 0x00, 0x00,  // CTA_PROTO_SRC_PORT = 8080
        0x06, 0x00, 0x03, 0x00, 0x9c, 0x42, 0x00, 0x00,  // CTA_PROTO_DST_PORT = 40002
        0x08, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x88,  // CTA_STATUS = CONFIRMED|SRC_NAT_DONE|DST_NAT_DONE, network order
        0x08, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00,  // CTA_MARK = 0
        0x08, 0x00, 0x0c, 0x00, 0x9a, 0xbc, 0xde, 0xf0,  // CTA_ID
        0x08, 0x00, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x01,  // CTA_USE = 1
        0x08, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x1d,  // CTA_TIMEOUT = 29 s
    ]

    static func message(_ payload: [UInt8], type: UInt16 = 0x0100) -> NetlinkMessage {
        NetlinkMessage(type: type, flags: 2, sequence: 1, portID: 0, payload: payload)  // NLM_F_MULTI
    }

    @Test func decodesBothTuplesTheIdAndNoZone() throws {
        let entry = try #require(ConntrackWire.decode(Self.message(Self.udpEntry)))
        #expect(entry.original == ConntrackTuple(source: .v("10.0.0.1"), destination: .v("10.96.0.10"), protocolNumber: 17,
                                                 sourcePort: 40002, destinationPort: 53))
        #expect(entry.reply == ConntrackTuple(source: .v("10.244.2.5"), destination: .v("10.0.0.1"), protocolNumber: 17,
                                              sourcePort: 8080, destinationPort: 40002))
        #expect(entry.replySource == RealServerKey(address: .v("10.244.2.5"), port: 8080))
        #expect(entry.id == 0x9abc_def0)
        #expect(entry.zone == nil)
        #expect(entry.family == .inet)
    }

    /// What is decoded is what a delete sends back: the original tuple and the id, byte for byte.
    @Test func aDecodedEntryDeletesWithTheBytesItCameWith() throws {
        let entry = try #require(ConntrackWire.decode(Self.message(Self.udpEntry)))
        let batch = MessageBatch()
        ConntrackWire.encodeDelete(entry, flags: NetlinkFlags.request, sequence: 1, into: batch)
        let sent = batch.bytes
        #expect(sent[16..<72] == Self.udpEntry[0..<56])  // nfgenmsg and CTA_TUPLE_ORIG
        #expect(sent[72...] == Self.udpEntry[124..<132])  // CTA_ID
    }

    @Test func ipv6EntryInAZone() throws {
        let payload: [UInt8] = [
            0x0a, 0x00, 0x00, 0x00,  // nfgenmsg family=AF_INET6
            0x4c, 0x00, 0x01, 0x80,  // nest CTA_TUPLE_ORIG len=76
            0x2c, 0x00, 0x01, 0x80,  // nest CTA_TUPLE_IP len=44
            0x14, 0x00, 0x03, 0x00, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,  // CTA_IP_V6_SRC = fd00::1
            0x14, 0x00, 0x04, 0x00, 0xfd, 0, 0, 0x96, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a,  // CTA_IP_V6_DST = fd00:96::a
            0x1c, 0x00, 0x02, 0x80,  // nest CTA_TUPLE_PROTO len=28
            0x05, 0x00, 0x01, 0x00, 0x11, 0x00, 0x00, 0x00,  // CTA_PROTO_NUM = 17
            0x06, 0x00, 0x02, 0x00, 0x9c, 0x42, 0x00, 0x00,  // CTA_PROTO_SRC_PORT = 40002
            0x06, 0x00, 0x03, 0x00, 0x00, 0x35, 0x00, 0x00,  // CTA_PROTO_DST_PORT = 53
            0x4c, 0x00, 0x02, 0x80,  // nest CTA_TUPLE_REPLY len=76
            0x2c, 0x00, 0x01, 0x80,  // nest CTA_TUPLE_IP len=44
            0x14, 0x00, 0x03, 0x00, 0xfd, 0, 0x02, 0x44, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x05,  // CTA_IP_V6_SRC = fd00:244::5
            0x14, 0x00, 0x04, 0x00, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,  // CTA_IP_V6_DST = fd00::1
            0x1c, 0x00, 0x02, 0x80,  // nest CTA_TUPLE_PROTO len=28
            0x05, 0x00, 0x01, 0x00, 0x11, 0x00, 0x00, 0x00,  // CTA_PROTO_NUM = 17
            0x06, 0x00, 0x02, 0x00, 0x00, 0x35, 0x00, 0x00,  // CTA_PROTO_SRC_PORT = 53
            0x06, 0x00, 0x03, 0x00, 0x9c, 0x42, 0x00, 0x00,  // CTA_PROTO_DST_PORT = 40002
            0x06, 0x00, 0x12, 0x00, 0x00, 0x05, 0x00, 0x00,  // CTA_ZONE = 5
        ]
        let entry = try #require(ConntrackWire.decode(Self.message(payload)))
        #expect(entry.original.destination == .v("fd00:96::a"))
        #expect(entry.replySource == RealServerKey(address: .v("fd00:244::5"), port: 53))
        #expect(entry.zone == 5)
        #expect(entry.id == nil)
        #expect(ConntrackWire.decode(Self.message(payload), family: .inet) == nil)  // an old kernel's unfiltered dump
    }

    @Test func entriesWithoutPortsAndOtherMessagesAreSkipped() {
        var icmp = Self.udpEntry
        icmp[36] = 0x01  // CTA_PROTO_NUM = 1 (ICMP) ...
        icmp.replaceSubrange(40..<56, with: [  // ... whose tuple carries id, type and code instead of ports
            0x06, 0x00, 0x04, 0x00, 0x00, 0x07, 0x00, 0x00,  // CTA_PROTO_ICMP_ID = 7
            0x05, 0x00, 0x05, 0x00, 0x08, 0x00, 0x00, 0x00,  // CTA_PROTO_ICMP_TYPE = 8
        ])
        #expect(ConntrackWire.decode(Self.message(icmp)) == nil)
        #expect(ConntrackWire.decode(Self.message(Self.udpEntry, type: 0x0200)) == nil)  // an expectation, not an entry
        #expect(ConntrackWire.decode(Self.message(Array(Self.udpEntry.prefix(3)))) == nil)
        #expect(ConntrackWire.decode(Self.message(Array(Self.udpEntry.prefix(60)))) == nil)  // cut inside the reply tuple
    }
}

extension IPAddress {
    static func v(_ text: String) -> IPAddress { IPAddress(text)! }
}
