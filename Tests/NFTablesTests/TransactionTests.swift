import Netlink
import Testing
@testable import NFTables

/// How a transaction becomes one batch: framing, the one ack, set ids, element lists split.
@Suite struct TransactionTests {
    let table = TableName(.inet, "kipvs")

    /// (type, flags, sequence) of every message in the batch.
    func headers(_ batch: MessageBatch) -> [(type: UInt16, flags: UInt16, sequence: UInt32)] {
        let bytes = batch.bytes
        return batch.offsets.map { o in
            (UInt16(bytes[o + 4]) | UInt16(bytes[o + 5]) << 8, UInt16(bytes[o + 6]) | UInt16(bytes[o + 7]) << 8,
             (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[o + 8 + $1]) << (8 * $1) })
        }
    }

    @Test func beginOperationsEndWithOneAckOnTheLastOperation() {
        let spec = SetSpec(name: "s", key: [.ipv4Address])
        let operations: [NFTOperation] = [
            .addTable(table), .addChain(table, Chain(name: "c")), .addSet(table, spec),
            .addRule(table, Rule(chain: "c", [.counter])),
        ]
        let plan = Transaction(operations, specs: [SetKey(table: table, name: "s"): spec])
        let h = headers(plan.encode(firstSequence: 100))
        #expect(h.map(\.type) == [0x10, 0x0a00, 0x0a03, 0x0a09, 0x0a06, 0x11])  // BEGIN, NEWTABLE, NEWCHAIN, NEWSET, NEWRULE, END
        #expect(h.map(\.sequence) == Array(100...105))
        let ack = UInt16(NetlinkFlags.ack)
        #expect(h.map { $0.flags & ack != 0 } == [false, false, false, false, true, false])
        #expect(h[4].flags & UInt16(NetlinkFlags.create) != 0 && h[4].flags & 0x800 != 0)  // NEWRULE: CREATE | APPEND
        #expect(h.allSatisfy { $0.flags & UInt16(NetlinkFlags.exclusive) == 0 })
    }

    @Test func longElementListsAreSplitIntoMessagesOfAtMost8KiB() throws {
        let spec = SetSpec(name: "s", key: [.ipv4Address, .inetProtocol, .inetService])
        let elements = (0..<10_000).map { i in SetElement(key: [10, 1, UInt8(i >> 8), UInt8(i & 0xff), 6, 0, 0, 0, 0, 80, 0, 0]) }
        let plan = Transaction([.addSet(table, spec), .addElements(table, set: "s", elements), .addRule(table, Rule(chain: "c", [.counter]))],
                               specs: [SetKey(table: table, name: "s"): spec])
        let batch = plan.encode(firstSequence: 1)
        let sizes = zip(batch.offsets, batch.offsets.dropFirst() + [batch.byteCount]).map { $1 - $0 }
        #expect(plan.messageCount > 10)
        #expect(sizes.allSatisfy { $0 <= 8 * 1024 + 512 })
        // Messages map back to their operation: the first and the last are the set and the rule.
        #expect(plan.operationIndex(ofMessage: 0) == 0)
        #expect(plan.operationIndex(ofMessage: 1) == 1)
        #expect(plan.operationIndex(ofMessage: plan.messageCount - 2) == 1)
        #expect(plan.operationIndex(ofMessage: plan.messageCount - 1) == 2)
        #expect(plan.operationIndex(ofMessage: plan.messageCount) == nil)
        var read = 0
        let bytes = batch.bytes
        for (start, end) in zip(batch.offsets.dropFirst(2).dropLast(2), batch.offsets.dropFirst(3)) {
            let message = NetlinkMessage(type: 0, flags: 0, sequence: 0, portID: 0, payload: Array(bytes[(start + 16)..<end]))
            read += try Libnftnl.parseElements(asElementsReply(message)).elements.count
        }
        #expect(read == 10_000)
    }

    @Test func setsCreatedInTheTransactionGetIdsThatLookupsAndElementsCarry() {
        let spec = SetSpec(name: "s", key: [.ipv4Address])
        let plan = Transaction([.addSet(table, SetSpec(name: "other", key: [.mark])), .addSet(table, spec)], specs: [:])
        #expect(plan.setIDs[SetKey(table: table, name: "other")] == 1)
        #expect(plan.setIDs[SetKey(table: table, name: "s")] == 2)
    }

    @Test func oneFieldRangesGoAsStartAndEndElements() throws {
        let spec = SetSpec(name: "cidrs", key: [.ipv4Address], interval: true)
        let plan = Transaction([.addElements(table, set: "cidrs", [SetElement(key: [10, 0, 0, 0], keyEnd: [10, 255, 255, 255])])],
                               specs: [SetKey(table: table, name: "cidrs"): spec])
        let bytes = plan.encode(firstSequence: 1).bytes
        let message = NetlinkMessage(type: 0, flags: 0, sequence: 0, portID: 0, payload: Array(bytes[36...]))
        #expect(try Libnftnl.parseElements(asElementsReply(message)).elements == [
            KernelElement(key: [10, 0, 0, 0]), KernelElement(key: [11, 0, 0, 0], intervalEnd: true),
        ])
    }

    @Test func operationsDescribeThemselves() {
        #expect(NFTOperation.addRule(table, Rule(chain: "nat-prerouting", [])).description == "add rule to chain inet kipvs nat-prerouting")
        #expect(NFTOperation.addSet(table, SetSpec(name: "m", key: [.mark], data: .mark)).description == "add map inet kipvs m")
        #expect(NFTOperation.deleteElements(table, set: "s", [SetElement(key: [1])]).description == "delete 1 elements from set inet kipvs s")
        let error = NFTablesError(errno: .noSuchFileOrDirectory, operationIndex: 3, operation: "add rule to chain inet kipvs nat-prerouting")
        #expect(error.description == "add rule to chain inet kipvs nat-prerouting: No such file or directory")
        #expect(!error.isStateUnknown)
        #expect(NFTablesError(errno: .noBufferSpace, operation: "commit 3 nf_tables operations").isStateUnknown)
    }
}
