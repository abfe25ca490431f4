import Netlink
import Testing
@testable import IPVS

/// Request bytes, one commented line per header or attribute, as the kernel reference documents them.
@Suite struct CodecGoldenTests {
    let family: UInt16 = 0x24  // the family id is resolved at run time; any value serves here
    let vip = VirtualServerKey.service(.tcp, IPAddress("10.96.0.10")!, 80)

    func encode(_ op: IPVSOperation, sequence: UInt32) -> [UInt8] {
        let batch = MessageBatch()
        IPVSCodec.encode(op, family: family, flags: NetlinkFlags.request | NetlinkFlags.ack, sequence: sequence, into: batch)
        return batch.bytes
    }

    static let serviceKey: [UInt8] = [
        0x06, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00,  // SVC_ATTR_AF = AF_INET
        0x06, 0x00, 0x02, 0x00, 0x06, 0x00, 0x00, 0x00,  // SVC_ATTR_PROTOCOL = TCP
        0x14, 0x00, 0x03, 0x00, 0x0a, 0x60, 0x00, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  // SVC_ATTR_ADDR = 10.96.0.10 (16 bytes)
        0x06, 0x00, 0x04, 0x00, 0x00, 0x50, 0x00, 0x00,  // SVC_ATTR_PORT = 80, network order
    ]

    @Test func newService() {
        let bytes = encode(.addVirtualServer(VirtualServer(key: vip, scheduler: "rr")), sequence: 2)
        let expected: [UInt8] = [
            0x68, 0x00, 0x00, 0x00, 0x24, 0x00, 0x05, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // nlmsghdr len=104 flags=REQUEST|ACK seq=2
            0x01, 0x01, 0x00, 0x00,  // genl cmd=NEW_SERVICE version=1
            0x54, 0x00, 0x01, 0x80,  // nest CMD_ATTR_SERVICE len=84, NLA_F_NESTED
        ] + Self.serviceKey + [
            0x07, 0x00, 0x06, 0x00, 0x72, 0x72, 0x00, 0x00,  // SVC_ATTR_SCHED_NAME "rr\0" + pad
            0x0c, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,  // SVC_ATTR_FLAGS {flags 0, mask all}
            0x08, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00,  // SVC_ATTR_TIMEOUT = 0 s
            0x08, 0x00, 0x09, 0x00, 0xff, 0xff, 0xff, 0xff,  // SVC_ATTR_NETMASK = /32
        ]
        #expect(bytes == expected)
    }

    @Test func newServiceWithClientIPAffinity() {
        let server = VirtualServer(key: vip, scheduler: "rr", flags: .persistent, timeout: 10800)
        let bytes = encode(.addVirtualServer(server), sequence: 2)
        #expect(bytes[76..<88] == [0x0c, 0x00, 0x07, 0x00, 0x01, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff])  // FLAGS {PERSISTENT, mask}
        #expect(bytes[88..<96] == [0x08, 0x00, 0x08, 0x00, 0x30, 0x2a, 0x00, 0x00])  // TIMEOUT = 10800
    }

    @Test func ipv6NetmaskIsAHostOrderPrefixLength() {
        let key = VirtualServerKey.service(.udp, IPAddress("fd00::a")!, 53)
        let bytes = encode(.addVirtualServer(VirtualServer(key: key, scheduler: "rr")), sequence: 1)
        #expect(bytes[24..<26] == [0x06, 0x00])
        #expect(bytes[28] == 0x0a)  // AF_INET6
        #expect(Array(bytes.suffix(8)) == [0x08, 0x00, 0x09, 0x00, 0x80, 0x00, 0x00, 0x00])  // NETMASK = 128
    }

    @Test func newDest() {
        let real = RealServer(address: IPAddress("10.244.1.5")!, port: 8080, forwarding: .masquerade, weight: 1)
        let bytes = encode(.addRealServer(vip, real), sequence: 3)
        let expected: [UInt8] = [
            0x8c, 0x00, 0x00, 0x00, 0x24, 0x00, 0x05, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // nlmsghdr len=140 seq=3
            0x05, 0x01, 0x00, 0x00,  // genl cmd=NEW_DEST
            0x30, 0x00, 0x01, 0x80,  // nest CMD_ATTR_SERVICE len=48 (key only)
        ] + Self.serviceKey + [
            0x48, 0x00, 0x02, 0x80,  // nest CMD_ATTR_DEST len=72
            0x14, 0x00, 0x01, 0x00, 0x0a, 0xf4, 0x01, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  // DEST_ATTR_ADDR = 10.244.1.5
            0x06, 0x00, 0x02, 0x00, 0x1f, 0x90, 0x00, 0x00,  // DEST_ATTR_PORT = 8080, network order
            0x08, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00,  // FWD_METHOD = MASQ
            0x08, 0x00, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00,  // WEIGHT = 1
            0x08, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00,  // U_THRESH = 0 (unlimited)
            0x08, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00,  // L_THRESH = 0
            0x06, 0x00, 0x0b, 0x00, 0x02, 0x00, 0x00, 0x00,  // ADDR_FAMILY = AF_INET
        ]
        #expect(bytes == expected)
    }

    @Test func deleteDestCarriesOnlyKeys() {
        let bytes = encode(.deleteRealServer(vip, RealServerKey(address: IPAddress("10.244.1.5")!, port: 8080)), sequence: 4)
        let expected: [UInt8] = [
            0x64, 0x00, 0x00, 0x00, 0x24, 0x00, 0x05, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // nlmsghdr len=100 seq=4
            0x07, 0x01, 0x00, 0x00,  // genl cmd=DEL_DEST
            0x30, 0x00, 0x01, 0x80,  // nest CMD_ATTR_SERVICE (key)
        ] + Self.serviceKey + [
            0x20, 0x00, 0x02, 0x80,  // nest CMD_ATTR_DEST len=32 (key)
            0x14, 0x00, 0x01, 0x00, 0x0a, 0xf4, 0x01, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  // DEST_ATTR_ADDR
            0x06, 0x00, 0x02, 0x00, 0x1f, 0x90, 0x00, 0x00,  // DEST_ATTR_PORT = 8080
        ]
        #expect(bytes == expected)
    }

    @Test func deleteServiceAndSetCommands() {
        #expect(encode(.deleteVirtualServer(vip), sequence: 5)[16] == 3)  // DEL_SERVICE
        #expect(encode(.updateVirtualServer(VirtualServer(key: vip)), sequence: 5)[16] == 2)  // SET_SERVICE
        let real = RealServer(address: IPAddress("10.244.1.5")!, port: 80)
        #expect(encode(.updateRealServer(vip, real), sequence: 5)[16] == 6)  // SET_DEST
    }

    @Test func firewallMarkServiceKey() {
        let bytes = encode(.deleteVirtualServer(.firewallMark(.inet, 7)), sequence: 1)
        let expected: [UInt8] = [
            0x28, 0x00, 0x00, 0x00, 0x24, 0x00, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // nlmsghdr len=40
            0x03, 0x01, 0x00, 0x00,  // genl cmd=DEL_SERVICE
            0x14, 0x00, 0x01, 0x80,  // nest CMD_ATTR_SERVICE len=20
            0x06, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00,  // SVC_ATTR_AF = AF_INET
            0x08, 0x00, 0x05, 0x00, 0x07, 0x00, 0x00, 0x00,  // SVC_ATTR_FWMARK = 7
        ]
        #expect(bytes == expected)
    }

    @Test func getDestDump() {
        let batch = MessageBatch()
        IPVSCodec.encodeDumpDests(of: vip, family: family, sequence: 4, into: batch)
        let expected: [UInt8] = [
            0x44, 0x00, 0x00, 0x00, 0x24, 0x00, 0x01, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // len=68 flags=REQUEST|DUMP seq=4
            0x08, 0x01, 0x00, 0x00,  // genl cmd=GET_DEST
            0x30, 0x00, 0x01, 0x80,  // nest CMD_ATTR_SERVICE (key)
        ] + Self.serviceKey
        #expect(batch.bytes == expected)
    }

    @Test func setTimeouts() {
        let batch = MessageBatch()
        IPVSCodec.encodeSetTimeouts(Timeouts(tcp: 900, tcpFin: 120, udp: 300), family: family, sequence: 6, into: batch)
        let expected: [UInt8] = [
            0x2c, 0x00, 0x00, 0x00, 0x24, 0x00, 0x05, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // len=44 REQUEST|ACK seq=6
            0x0c, 0x01, 0x00, 0x00,  // genl cmd=SET_CONFIG
            0x08, 0x00, 0x04, 0x00, 0x84, 0x03, 0x00, 0x00,  // TIMEOUT_TCP = 900
            0x08, 0x00, 0x05, 0x00, 0x78, 0x00, 0x00, 0x00,  // TIMEOUT_TCP_FIN = 120
            0x08, 0x00, 0x06, 0x00, 0x2c, 0x01, 0x00, 0x00,  // TIMEOUT_UDP = 300
        ]
        #expect(batch.bytes == expected)
    }

    @Test func flushAndInfoAreBare() {
        let batch = MessageBatch()
        IPVSCodec.encodeBare(17, family: family, sequence: 7, into: batch)
        #expect(batch.bytes == [
            0x14, 0x00, 0x00, 0x00, 0x24, 0x00, 0x05, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // len=20 REQUEST|ACK seq=7
            0x11, 0x01, 0x00, 0x00,  // genl cmd=FLUSH
        ])
    }

    /// What the kernel sends back decodes to what was written, the hashed flag masked off.
    @Test func decodeServiceReplyMasksHashed() {
        let server = VirtualServer(key: vip, scheduler: "sh", flags: [.persistent, .schedulerFallback], timeout: 300)
        var bytes = encode(.addVirtualServer(server), sequence: 1)
        bytes[76 + 4] |= 0x02  // the kernel reports IP_VS_SVC_F_HASHED
        let message = NetlinkMessage(type: family, flags: 2, sequence: 1, portID: 0, payload: Array(bytes[16...]))
        #expect(IPVSCodec.decodeService(message.genericAttributes)?.server == server)
    }

    @Test func decodeDestReply() {
        let real = RealServer(key: RealServerKey(address: IPAddress("fd00::5")!, port: 443), forwarding: .tunnel, weight: 7,
                              upperThreshold: 100, lowerThreshold: 10)
        let bytes = encode(.addRealServer(.service(.tcp, IPAddress("fd00::1")!, 443), real), sequence: 1)
        let message = NetlinkMessage(type: family, flags: 2, sequence: 1, portID: 0, payload: Array(bytes[16...]))
        #expect(IPVSCodec.decodeDest(message.genericAttributes, serviceFamily: .inet6)?.server == real)
    }

    /// IPVS also balances AH and ESP; such a virtual server is well formed, and not kipvs' kind.
    @Test func anESPServiceIsUnmodelledNotUnreadable() throws {
        var bytes = encode(.addVirtualServer(VirtualServer(key: vip, scheduler: "rr")), sequence: 1)
        // IPVS_SVC_ATTR_PROTOCOL: nla_len 6, nla_type 2, u16 6 (TCP) → 50 (ESP)
        let at = try #require((0..<(bytes.count - 6)).first { Array(bytes[$0..<($0 + 6)]) == [6, 0, 2, 0, 6, 0] })
        bytes[at + 4] = 50
        let message = NetlinkMessage(type: family, flags: 2, sequence: 1, portID: 0, payload: Array(bytes[16...]))
        #expect(IPVSCodec.hasUnmodelledProtocol(message.genericAttributes))
        #expect(IPVSCodec.decodeService(message.genericAttributes) == nil)
        let tcp = encode(.addVirtualServer(VirtualServer(key: vip, scheduler: "rr")), sequence: 1)
        #expect(!IPVSCodec.hasUnmodelledProtocol(NetlinkMessage(type: family, flags: 2, sequence: 1, portID: 0,
                                                                 payload: Array(tcp[16...])).genericAttributes))
    }

    @Test func garbageRepliesDecodeToNil() {
        let message = NetlinkMessage(type: family, flags: 2, sequence: 1, portID: 0, payload: [1, 1, 0, 0, 8, 0, 1, 0x80, 9, 9, 9, 9])
        #expect(IPVSCodec.decodeService(message.genericAttributes) == nil)
        #expect(IPVSCodec.decodeDest(message.genericAttributes, serviceFamily: .inet) == nil)
    }
}
