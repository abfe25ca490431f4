import Testing
@testable import NFTables

/// One-field interval sets: a range goes to the kernel as a start element and an end element.
@Suite struct ElementTests {
    let ports = SetSpec(name: "ports", key: [.inetService], interval: true)

    @Test func rangeBecomesStartAndEndAfterIt() {
        let kernel = ports.kernelElements([SetElement(key: [0x00, 0x50], keyEnd: [0x00, 0xff])])
        #expect(kernel == [
            KernelElement(key: [0x00, 0x50]),
            KernelElement(key: [0x01, 0x00], intervalEnd: true),  // 255 + 1, carried into the high byte
        ])
        #expect(ports.elements(from: kernel) == [SetElement(key: [0x00, 0x50], keyEnd: [0x00, 0xff])])
    }

    @Test func rangeToTheHighestKeyHasNoEndElement() {
        let element = SetElement(key: [0x80, 0x00], keyEnd: [0xff, 0xff])
        #expect(ports.kernelElements([element]) == [KernelElement(key: [0x80, 0x00])])
        #expect(ports.elements(from: [KernelElement(key: [0x80, 0x00])]) == [element])
    }

    @Test func adjacentRangesReadBackApart() {
        let elements: Set<SetElement> = [
            SetElement(key: [0x00, 0x01], keyEnd: [0x00, 0x05]),
            SetElement(key: [0x00, 0x06], keyEnd: [0x00, 0x0a]),
        ]
        // The kernel lists in its own order: shuffle to prove the order does not matter.
        let kernel = ports.kernelElements(Array(elements)).reversed()
        #expect(ports.elements(from: Array(kernel)) == elements)
    }

    @Test func concatenatedRangesKeepTheirKeyEnd() {
        let spec = SetSpec(name: "ranges", key: [.ipv4Address, .ipv4Address], interval: true)
        let element = SetElement(key: [10, 0, 0, 1, 10, 1, 0, 0], keyEnd: [10, 0, 0, 1, 10, 1, 255, 255])
        #expect(spec.kernelElements([element]) == [KernelElement(key: element.key, keyEnd: element.keyEnd)])
    }
}
