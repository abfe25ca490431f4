/// One set element as the kernel holds it. Interval sets of one field (the kernel's rbtree backend)
/// keep a range as two elements: its start, and the key after its end flagged as an interval end.
struct KernelElement: Hashable, Sendable {
    var key: [UInt8]
    var keyEnd: [UInt8]?
    var data: [UInt8]?
    var verdict: Verdict?
    /// `NFT_SET_ELEM_INTERVAL_END`.
    var intervalEnd = false

    /// An upper bound of its bytes inside a NEWSETELEM message.
    var encodedSize: Int {
        func value(_ bytes: [UInt8]?) -> Int { bytes.map { 8 + ($0.count + 3) / 4 * 4 } ?? 0 }
        var size = 4 + value(key) + value(keyEnd) + value(data) + 8
        if let verdict {
            size += 24
            if case .jump(let chain) = verdict { size += chain.utf8.count + 8 }
            if case .goto(let chain) = verdict { size += chain.utf8.count + 8 }
        }
        return size
    }
}

extension SetSpec {
    /// The key end attribute is for concatenations only (the pipapo backend); a one-field interval
    /// set goes to the rbtree backend, which wants a range as a start element and an end element.
    var rangesAsTwoElements: Bool { interval && key.count == 1 }

    /// What the kernel is sent for `elements`.
    func kernelElements(_ elements: [SetElement]) -> [KernelElement] {
        guard rangesAsTwoElements else {
            return elements.map { KernelElement(key: $0.key, keyEnd: $0.keyEnd, data: $0.data, verdict: $0.verdict) }
        }
        var out: [KernelElement] = []
        out.reserveCapacity(elements.count * 2)
        for element in elements {
            out.append(KernelElement(key: element.key, data: element.data, verdict: element.verdict))
            // A range up to the highest key has no end element: nothing follows it.
            if let after = Bytes.successor(element.keyEnd ?? element.key) {
                out.append(KernelElement(key: after, intervalEnd: true))
            }
        }
        return out
    }

    /// The elements that the kernel's `elements` stand for.
    func elements(from kernel: [KernelElement]) -> Set<SetElement> {
        guard rangesAsTwoElements else {
            return Set(kernel.map { SetElement(key: $0.key, keyEnd: $0.keyEnd, data: $0.data, verdict: $0.verdict) })
        }
        // In key order (the rbtree compares bytes), an end before a start at the same key.
        let sorted = kernel.sorted { a, b in
            a.key != b.key ? a.key.lexicographicallyPrecedes(b.key) : (a.intervalEnd && !b.intervalEnd)
        }
        var out = Set<SetElement>()
        for (i, element) in sorted.enumerated() where !element.intervalEnd {
            let next = i + 1 < sorted.count ? sorted[i + 1] : nil
            let end = next.flatMap { $0.intervalEnd ? Bytes.predecessor($0.key) : nil }
                ?? [UInt8](repeating: 0xff, count: element.key.count)
            out.insert(SetElement(key: element.key, keyEnd: end, data: element.data, verdict: element.verdict))
        }
        return out
    }
}

enum Bytes {
    /// The big-endian number one higher, nil past the highest.
    static func successor(_ bytes: [UInt8]) -> [UInt8]? {
        var out = bytes
        for i in out.indices.reversed() {
            if out[i] == 0xff { out[i] = 0; continue }
            out[i] += 1
            return out
        }
        return nil
    }

    /// The big-endian number one lower, nil below zero.
    static func predecessor(_ bytes: [UInt8]) -> [UInt8]? {
        var out = bytes
        for i in out.indices.reversed() {
            if out[i] == 0 { out[i] = 0xff; continue }
            out[i] -= 1
            return out
        }
        return nil
    }
}
