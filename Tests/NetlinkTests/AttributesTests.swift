import Testing
@testable import Netlink

@Suite struct MessageBatchTests {
    @Test func getFamilyRequestMatchesTheKernelReference() {
        let batch = MessageBatch()
        GenericNetlink.encodeGetFamily("IPVS", into: batch, sequence: 1)
        let expected: [UInt8] = [
            0x20, 0x00, 0x00, 0x00, 0x10, 0x00, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // nlmsghdr len=32 type=GENL_ID_CTRL flags=REQUEST|ACK seq=1
            0x03, 0x01, 0x00, 0x00,  // genl cmd=CTRL_CMD_GETFAMILY version=1
            0x09, 0x00, 0x02, 0x00, 0x49, 0x50, 0x56, 0x53, 0x00, 0x00, 0x00, 0x00,  // FAMILY_NAME "IPVS\0" + 3 zero pad
        ]
        #expect(batch.bytes == expected)
    }

    @Test func attributesRoundTrip() {
        let batch = MessageBatch()
        batch.beginGeneric(family: 0x24, flags: 1, sequence: 9, command: 4)
        batch.put(1, u16: 0xabcd)
        batch.beginNest(2)
        batch.put(3, u32: 0xdead_beef)
        batch.put(4, string: "rr")
        batch.endNest()
        batch.end()
        let bytes = batch.bytes
        let message = NetlinkMessage(type: 0x24, flags: 1, sequence: 9, portID: 0, payload: Array(bytes[16...]))
        let a = message.genericAttributes
        #expect(message.genericCommand == 4)
        #expect(a.u16(1) == 0xabcd)
        #expect(a.nested(2)?.u32(3) == 0xdead_beef)
        #expect(a.nested(2)?.string(4) == "rr")
        #expect(a.u32(99) == nil)
    }

    @Test func truncatedAttributesEndTheWalkWithoutTrapping() {
        // A length that runs past the end, then garbage.
        let payload: [UInt8] = [1, 0, 0, 0, 0x40, 0x00, 0x01, 0x00, 0xff, 0xff]
        let a = Attributes(parsing: payload, from: 4)
        #expect(a.entries.isEmpty)
    }

    @Test func batchReportsFullAtItsLimit() {
        let batch = MessageBatch(limit: 64)
        var n = 0
        while !batch.isFull {
            GenericNetlink.encodeGetFamily("IPVS", into: batch, sequence: UInt32(n))
            n += 1
        }
        #expect(n == 2)
        #expect(batch.count == 2)
        batch.addFlags(0x200, toMessage: 1)
        #expect(batch.bytes[32 + 7] == 0x02)  // high byte of the second message's flags
        batch.reset()
        #expect(batch.isEmpty && batch.byteCount == 0)
    }
}
