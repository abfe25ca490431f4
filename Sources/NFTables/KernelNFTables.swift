import Netlink

/// The kernel's nf_tables over a NETLINK_NETFILTER socket. A commit is one nfnetlink batch,
/// sent in one datagram: the kernel applies all of it or none of it.
public final class KernelNFTables: NFTablesHandle {
    public let connection: NetlinkConnection
    /// Specs of sets seen in a commit or a read, so that an element change needs no extra round trip.
    /// Forgotten on any failure: a set changed behind kipvs' back makes a commit fail first.
    private var knownSpecs: [SetKey: SetSpec] = [:]

    /// The receive buffer holds the replies to one transaction: an ack, or an error per refused message.
    public init(receiveBuffer: Int = 8 << 20) throws {
        do {
            connection = try NetlinkConnection(protocol: Libnftnl.netlinkProtocol, receiveBuffer: receiveBuffer)
        } catch let error as NetlinkError {
            throw NFTablesError(errno: error.errno, operation: error.operation)
        }
    }

    public func table(_ name: TableName) throws -> TableSnapshot? {
        do {
            _ = try connection.request(operation: "get table \(name)") { batch, seq in
                Libnftnl.getTable(name, sequence: seq, into: batch)
            }
        } catch let error as NetlinkError where error.errno == .noSuchFileOrDirectory {
            return nil
        } catch let error as NetlinkError {
            throw NFTablesError(errno: error.errno, operation: error.operation)
        }
        var snapshot = TableSnapshot()
        try read("list chains of \(name)", { Libnftnl.dumpChains(name, sequence: $1, into: $0) }) { message in
            let (table, chain) = try Libnftnl.parseChain(message)
            if table == name.name { snapshot.chains.append(chain) }
        }
        try read("list sets of \(name)", { Libnftnl.getSets(name, sequence: $1, into: $0) }) { message in
            if let (table, set) = try Libnftnl.parseSet(message), table == name.name { snapshot.sets.append(set) }
        }
        for set in snapshot.sets {
            knownSpecs[SetKey(table: name, name: set.name)] = set
            snapshot.elements[set.name] = try elements(of: set, in: name)
        }
        var rules: [String: [Rule]] = [:]
        try read("list rules of \(name)", { Libnftnl.dumpRules(name, sequence: $1, into: $0) }) { message in
            let (table, rule) = try Libnftnl.parseRule(message)
            if table == name.name { rules[rule.chain, default: []].append(rule) }
        }
        snapshot.rules = snapshot.chains.flatMap { rules[$0.name] ?? [] }
        return snapshot
    }

    /// A set's elements. A dump longer than one message resumes each message by counting elements
    /// from the start; a hash set resized in between (as the kernel does shortly after a large
    /// insert) makes it skip or repeat elements without any sign. So such a dump is repeated until
    /// two agree.
    private func elements(of set: SetSpec, in table: TableName) throws -> Set<SetElement> {
        var previous: Set<SetElement>?
        for _ in 0..<8 {
            var kernel: [KernelElement] = []
            var messages = 0
            try read("list elements of set \(table) \(set.name)", { Libnftnl.dumpElements(table, set: set.name, sequence: $1, into: $0) }) {
                kernel += try Libnftnl.parseElements($0).elements
                messages += 1
            }
            let elements = set.elements(from: kernel)
            if messages <= 1 || elements == previous { return elements }
            previous = elements
        }
        throw NFTablesError(errno: .resourceTemporarilyUnavailable, operation: "list elements of set \(table) \(set.name): every read differed")
    }

    public func commit(_ operations: [NFTOperation]) throws {
        guard !operations.isEmpty else { return }
        do {
            try commit(operations, specs: try setSpecs(for: operations))
        } catch {
            knownSpecs = [:]
            throw error
        }
    }

    private func commit(_ operations: [NFTOperation], specs: [SetKey: SetSpec]) throws {
        let plan = Transaction(operations, specs: specs)
        let first = connection.socket.reserveSequences(plan.messageCount + 2)
        let batch = plan.encode(firstSequence: first)
        let last = first &+ UInt32(plan.messageCount)
        let failures: [(sequence: UInt32, errno: Errno)]
        let operation = "commit \(operations.count) nf_tables operations"
        do {
            failures = try connection.transact(batch, firstSequence: first, lastSequence: last, operation: operation)
        } catch let error as NetlinkError {
            throw NFTablesError(errno: error.errno, operation: operation)  // ENOBUFS: isStateUnknown
        }
        // The kernel reports every refused message at the end, in order; the first one names the culprit.
        guard let failure = failures.first else {
            for operation in operations {
                if case .deleteTable(let table) = operation { knownSpecs = knownSpecs.filter { $0.key.table != table } }
                if case .addSet(let table, let spec) = operation { knownSpecs[SetKey(table: table, name: spec.name)] = spec }
            }
            return
        }
        guard let index = plan.operationIndex(ofMessage: Int(failure.sequence &- first) - 1) else {
            throw NFTablesError(errno: failure.errno, operation: operation)
        }
        throw NFTablesError(errno: failure.errno, operationIndex: index, operation: operations[index].description)
    }

    /// The specs of the sets whose elements change: from the transaction, else from the kernel.
    /// A one-field interval set's ranges are sent as pairs of elements, so the encoding depends on it.
    private func setSpecs(for operations: [NFTOperation]) throws -> [SetKey: SetSpec] {
        var specs: [SetKey: SetSpec] = [:]
        for operation in operations {
            switch operation {
            case .addSet(let table, let spec):
                specs[SetKey(table: table, name: spec.name)] = spec
            case .addElements(let table, let set, _), .deleteElements(let table, let set, _):
                let key = SetKey(table: table, name: set)
                guard specs[key] == nil else { continue }
                if let known = knownSpecs[key] {
                    specs[key] = known
                    continue
                }
                do {
                    let replies = try connection.request(operation: "get set \(table) \(set)") { batch, seq in
                        Libnftnl.getSets(table, name: set, sequence: seq, into: batch)
                    }
                    if let reply = replies.first, let (_, spec) = try Libnftnl.parseSet(reply) {
                        specs[key] = spec
                        knownSpecs[key] = spec
                    }
                } catch let error as NetlinkError where error.errno == .noSuchFileOrDirectory {
                    continue  // the transaction fails on it, naming the operation
                } catch let error as NetlinkError {
                    throw NFTablesError(errno: error.errno, operation: error.operation)
                }
            default:
                continue
            }
        }
        return specs
    }

    private func read(_ operation: String, _ build: (MessageBatch, UInt32) -> Void, body: (NetlinkMessage) throws -> Void) throws {
        do {
            try connection.dump(operation: operation, build: build, body: body)
        } catch let error as NetlinkError {
            throw NFTablesError(errno: error.errno, operation: error.operation)
        }
    }
}

struct SetKey: Hashable {
    var table: TableName
    var name: String
}

/// A transaction as messages: one per operation, except element lists, which are split so that
/// no message comes near the batch buffer's per-message room.
struct Transaction {
    struct Message {
        var operationIndex: Int
        var elements: ArraySlice<KernelElement> = []
    }

    let operations: [NFTOperation]
    private(set) var messages: [Message] = []
    /// Set ids for the sets this transaction creates: rules that look them up name them by id too.
    private(set) var setIDs: [SetKey: UInt32] = [:]

    var messageCount: Int { messages.count }

    init(_ operations: [NFTOperation], specs: [SetKey: SetSpec]) {
        self.operations = operations
        for (index, operation) in operations.enumerated() {
            switch operation {
            case .addSet(let table, let spec):
                setIDs[SetKey(table: table, name: spec.name)] = UInt32(setIDs.count + 1)
                messages.append(Message(operationIndex: index))
            case .addElements(let table, let set, let elements), .deleteElements(let table, let set, let elements):
                let spec = specs[SetKey(table: table, name: set)]
                let kernel = spec?.kernelElements(elements)
                    ?? elements.map { KernelElement(key: $0.key, keyEnd: $0.keyEnd, data: $0.data, verdict: $0.verdict) }
                for chunk in Self.chunks(kernel) { messages.append(Message(operationIndex: index, elements: chunk)) }
            default:
                messages.append(Message(operationIndex: index))
            }
        }
    }

    /// Consecutive runs of elements of at most `Libnftnl.elementBytesPerMessage` bytes; at least one run.
    static func chunks(_ elements: [KernelElement]) -> [ArraySlice<KernelElement>] {
        var out: [ArraySlice<KernelElement>] = []
        var start = elements.startIndex
        var bytes = 0
        for (i, element) in elements.enumerated() {
            let size = element.encodedSize
            if bytes + size > Libnftnl.elementBytesPerMessage && i > start {
                out.append(elements[start..<i])
                start = i
                bytes = 0
            }
            bytes += size
        }
        out.append(elements[start...])
        return out
    }

    func operationIndex(ofMessage index: Int) -> Int? {
        messages.indices.contains(index) ? messages[index].operationIndex : nil
    }

    /// BATCH_BEGIN, the messages, BATCH_END; sequence numbers from `firstSequence`, the last
    /// operation's message with NLM_F_ACK: the kernel answers errors anyway, acks only when asked.
    func encode(firstSequence: UInt32) -> MessageBatch {
        let batch = MessageBatch(limit: 64 * 1024)
        Libnftnl.batchBegin(sequence: firstSequence, into: batch)
        for (i, message) in messages.enumerated() {
            let sequence = firstSequence &+ UInt32(i + 1)
            let ack = i == messages.count - 1 ? Libnftnl.ack : 0
            encode(message, sequence: sequence, ack: ack, into: batch)
        }
        Libnftnl.batchEnd(sequence: firstSequence &+ UInt32(messages.count + 1), into: batch)
        return batch
    }

    private func encode(_ message: Message, sequence: UInt32, ack: UInt16, into batch: MessageBatch) {
        switch operations[message.operationIndex] {
        case .addTable(let table):
            // No NLM_F_EXCL: an existing table is kept as it is.
            Libnftnl.table(Libnftnl.newTable, table, flags: Libnftnl.create | ack, sequence: sequence, into: batch)
        case .deleteTable(let table):
            Libnftnl.table(Libnftnl.deleteTable, table, flags: ack, sequence: sequence, into: batch)
        case .addChain(let table, let chain):
            Libnftnl.chain(table, chain, flags: Libnftnl.create | ack, sequence: sequence, into: batch)
        case .addRule(let table, let rule):
            let ids = setIDs.reduce(into: [String: UInt32]()) { if $1.key.table == table { $0[$1.key.name] = $1.value } }
            Libnftnl.rule(table, rule, setIDs: ids, flags: Libnftnl.create | Libnftnl.append | ack, sequence: sequence, into: batch)
        case .addSet(let table, let spec):
            Libnftnl.set(table, spec, id: setIDs[SetKey(table: table, name: spec.name)]!, flags: Libnftnl.create | ack,
                         sequence: sequence, into: batch)
        case .addElements(let table, let set, _):
            Libnftnl.elements(Libnftnl.newSetElement, table, set: set, setID: setIDs[SetKey(table: table, name: set)], message.elements,
                              flags: Libnftnl.create | ack, sequence: sequence, into: batch)
        case .deleteElements(let table, let set, _):
            Libnftnl.elements(Libnftnl.deleteSetElement, table, set: set, setID: setIDs[SetKey(table: table, name: set)], message.elements,
                              flags: ack, sequence: sequence, into: batch)
        }
    }
}
