import Testing
@testable import NFTables

/// The fake's own bookkeeping; its answers are checked against the kernel's in NFTablesKernelTests.
@Suite struct FakeNFTablesTests {
    let table = TableName(.inet, "kipvs")
    let set = SetSpec(name: "s", key: [.ipv4Address])

    @Test func aRefusedOperationLeavesEverythingAsItWas() throws {
        let fake = FakeNFTables()
        try fake.commit([.addTable(table), .addSet(table, set), .addElements(table, set: "s", [SetElement(key: [1, 2, 3, 4])])])
        let before = fake.table(table)
        #expect(throws: NFTablesError(errno: .noSuchFileOrDirectory, operationIndex: 2, operation: "add rule to chain inet kipvs missing")) {
            try fake.commit([
                .addElements(table, set: "s", [SetElement(key: [5, 6, 7, 8])]),
                .addChain(table, Chain(name: "c")),
                .addRule(table, Rule(chain: "missing", [.counter])),
            ])
        }
        #expect(fake.table(table) == before)
        #expect(fake.commits.count == 2)
    }

    @Test func elementsAreCheckedAgainstTheSet() {
        let fake = FakeNFTables()
        #expect(throws: Never.self) { try fake.commit([.addTable(self.table), .addSet(self.table, self.set)]) }
        for element in [SetElement(key: [1, 2, 3]), SetElement(key: [1, 2, 3, 4], data: [0, 0, 0, 1]),
                        SetElement(key: [1, 2, 3, 4], keyEnd: [1, 2, 3, 5])] {
            #expect(throws: NFTablesError(errno: .invalidArgument, operationIndex: 0, operation: "add 1 elements to set inet kipvs s")) {
                try fake.commit([.addElements(self.table, set: "s", [element])])
            }
        }
    }

    @Test func deletingTheTableTakesEverythingInIt() throws {
        let fake = FakeNFTables()
        try fake.commit([.addTable(table), .addChain(table, Chain(name: "c")), .addSet(table, set), .addRule(table, Rule(chain: "c", [.counter]))])
        try fake.commit([.deleteTable(table)])
        #expect(fake.table(table) == nil)
        try fake.commit([.addTable(table)])
        #expect(fake.table(table) == TableSnapshot())
    }
}
