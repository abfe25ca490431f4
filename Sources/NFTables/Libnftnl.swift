// Every call into libnftnl and every raw pointer of the NFTables module lives in this file.
import CNftnl
import Netlink
#if canImport(Glibc)
import Glibc
#endif

/// nf_tables messages, built and parsed with libnftnl.
enum Libnftnl {
    /// Room reserved for one message; libnftnl writes attributes without bounds checks, so every
    /// message is kept far below it (element lists are split at `elementBytesPerMessage`).
    static let messageRoom = 32 * 1024
    static let elementBytesPerMessage = 8 * 1024

    static let newTable = UInt16(NFT_MSG_NEWTABLE.rawValue)
    static let getTable = UInt16(NFT_MSG_GETTABLE.rawValue)
    static let deleteTable = UInt16(NFT_MSG_DELTABLE.rawValue)
    static let newChain = UInt16(NFT_MSG_NEWCHAIN.rawValue)
    static let getChain = UInt16(NFT_MSG_GETCHAIN.rawValue)
    static let newRule = UInt16(NFT_MSG_NEWRULE.rawValue)
    static let getRule = UInt16(NFT_MSG_GETRULE.rawValue)
    static let newSet = UInt16(NFT_MSG_NEWSET.rawValue)
    static let getSet = UInt16(NFT_MSG_GETSET.rawValue)
    static let newSetElement = UInt16(NFT_MSG_NEWSETELEM.rawValue)
    static let getSetElement = UInt16(NFT_MSG_GETSETELEM.rawValue)
    static let deleteSetElement = UInt16(NFT_MSG_DELSETELEM.rawValue)

    static let create = UInt16(NLM_F_CREATE)
    static let append = UInt16(NLM_F_APPEND)
    static let ack = UInt16(NLM_F_ACK)
    static let dump = UInt16(NLM_F_DUMP)

    /// `NFT_DATA_VERDICT`: the data type of a verdict map.
    static let verdictDataType = UInt32(NFT_DATA_VERDICT.rawValue)
    static let netlinkProtocol = NETLINK_NETFILTER

    // MARK: - Building

    /// Writes one message: `nftnl_nlmsg_build_hdr`, then `payload` adds the attributes.
    private static func message(_ type: UInt16, family: UInt8, flags: UInt16, sequence: UInt32, into batch: MessageBatch,
                                reserving: Int = messageRoom, _ payload: (UnsafeMutablePointer<nlmsghdr>) -> Void) {
        batch.appendMessage(reserving: reserving) { buffer in
            let nlh = nftnl_nlmsg_build_hdr(buffer.assumingMemoryBound(to: CChar.self), type, UInt16(family), flags, sequence)!
            payload(nlh)
            return Int(nlh.pointee.nlmsg_len)
        }
    }

    /// `NFNL_MSG_BATCH_BEGIN`, res_id `NFNL_SUBSYS_NFTABLES`: the kernel applies what follows as one transaction.
    static func batchBegin(sequence: UInt32, into batch: MessageBatch) {
        batch.appendMessage(reserving: 64) { buffer in
            Int(nftnl_batch_begin(buffer.assumingMemoryBound(to: CChar.self), sequence)!.pointee.nlmsg_len)
        }
    }

    /// `NFNL_MSG_BATCH_END`: commit.
    static func batchEnd(sequence: UInt32, into batch: MessageBatch) {
        batch.appendMessage(reserving: 64) { buffer in
            Int(nftnl_batch_end(buffer.assumingMemoryBound(to: CChar.self), sequence)!.pointee.nlmsg_len)
        }
    }

    static func table(_ type: UInt16, _ name: TableName, flags: UInt16, sequence: UInt32, into batch: MessageBatch) {
        let table = nftnl_table_alloc()!
        defer { nftnl_table_free(table) }
        nftnl_table_set_str(table, UInt16(NFTNL_TABLE_NAME.rawValue), name.name)
        message(type, family: name.family.rawValue, flags: flags, sequence: sequence, into: batch) {
            nftnl_table_nlmsg_build_payload($0, table)
        }
    }

    static func chain(_ table: TableName, _ chain: Chain, flags: UInt16, sequence: UInt32, into batch: MessageBatch) {
        let c = nftnl_chain_alloc()!
        defer { nftnl_chain_free(c) }
        nftnl_chain_set_str(c, UInt16(NFTNL_CHAIN_TABLE.rawValue), table.name)
        nftnl_chain_set_str(c, UInt16(NFTNL_CHAIN_NAME.rawValue), chain.name)
        if let hook = chain.hook {
            nftnl_chain_set_u32(c, UInt16(NFTNL_CHAIN_HOOKNUM.rawValue), hook.hook.rawValue)
            nftnl_chain_set_s32(c, UInt16(NFTNL_CHAIN_PRIO.rawValue), hook.priority)
            nftnl_chain_set_str(c, UInt16(NFTNL_CHAIN_TYPE.rawValue), hook.type.rawValue)
        }
        message(newChain, family: table.family.rawValue, flags: flags, sequence: sequence, into: batch) {
            nftnl_chain_nlmsg_build_payload($0, c)
        }
    }

    static func set(_ table: TableName, _ spec: SetSpec, id: UInt32, flags: UInt16, sequence: UInt32, into batch: MessageBatch) {
        let s = nftnl_set_alloc()!
        defer { nftnl_set_free(s) }
        nftnl_set_set_str(s, UInt16(NFTNL_SET_TABLE.rawValue), table.name)
        nftnl_set_set_str(s, UInt16(NFTNL_SET_NAME.rawValue), spec.name)
        var setFlags: UInt32 = 0
        if spec.data != nil { setFlags |= UInt32(NFT_SET_MAP.rawValue) }
        if spec.interval { setFlags |= UInt32(NFT_SET_INTERVAL.rawValue) }
        // Concatenated ranges live in the pipapo backend, which needs the flag and each field's length.
        if spec.interval && spec.key.count > 1 { setFlags |= UInt32(NFT_SET_CONCAT.rawValue) }
        nftnl_set_set_u32(s, UInt16(NFTNL_SET_FLAGS.rawValue), setFlags)
        nftnl_set_set_u32(s, UInt16(NFTNL_SET_KEY_TYPE.rawValue), spec.keyType)
        nftnl_set_set_u32(s, UInt16(NFTNL_SET_KEY_LEN.rawValue), UInt32(spec.keyLength))
        if let data = spec.data {
            if data == .verdict {
                // The kernel sizes verdicts itself (struct nft_verdict) and ignores a data length.
                nftnl_set_set_u32(s, UInt16(NFTNL_SET_DATA_TYPE.rawValue), verdictDataType)
            } else {
                nftnl_set_set_u32(s, UInt16(NFTNL_SET_DATA_TYPE.rawValue), data.rawValue)
                nftnl_set_set_u32(s, UInt16(NFTNL_SET_DATA_LEN.rawValue), UInt32(data.length))
            }
        }
        // Names a set created earlier in the same transaction, for rules that look it up.
        nftnl_set_set_u32(s, UInt16(NFTNL_SET_ID.rawValue), id)
        if spec.interval && spec.key.count > 1 {
            // libnftnl takes one byte per field and counts fields up to the first zero.
            var lengths = spec.key.map { UInt8($0.length) }
            nftnl_set_set_data(s, UInt16(NFTNL_SET_DESC_CONCAT.rawValue), &lengths, UInt32(lengths.count))
        }
        // nft's user data: the byte order of key and value, which `nft list` needs to print them.
        let udata = nftnl_udata_buf_alloc(64)!
        defer { nftnl_udata_buf_free(udata) }
        nftnl_udata_put_u32(udata, UInt8(NFTNL_UDATA_SET_KEYBYTEORDER.rawValue), spec.key.count == 1 ? spec.key[0].nftByteOrder : 0)
        if let data = spec.data, data != .verdict {
            nftnl_udata_put_u32(udata, UInt8(NFTNL_UDATA_SET_DATABYTEORDER.rawValue), data.nftByteOrder)
        }
        nftnl_set_set_data(s, UInt16(NFTNL_SET_USERDATA.rawValue), nftnl_udata_buf_data(udata), nftnl_udata_buf_len(udata))
        message(newSet, family: table.family.rawValue, flags: flags, sequence: sequence, into: batch) {
            nftnl_set_nlmsg_build_payload($0, s)
        }
    }

    /// One NEWSETELEM or DELSETELEM message for `elements` (at most `elementBytesPerMessage` of them).
    static func elements(_ type: UInt16, _ table: TableName, set name: String, setID: UInt32?, _ elements: ArraySlice<KernelElement>,
                         flags: UInt16, sequence: UInt32, into batch: MessageBatch) {
        let s = nftnl_set_alloc()!
        defer { nftnl_set_free(s) }
        nftnl_set_set_str(s, UInt16(NFTNL_SET_TABLE.rawValue), table.name)
        nftnl_set_set_str(s, UInt16(NFTNL_SET_NAME.rawValue), name)
        if let setID { nftnl_set_set_u32(s, UInt16(NFTNL_SET_ID.rawValue), setID) }
        for element in elements {
            let e = nftnl_set_elem_alloc()!
            element.key.withUnsafeBytes { must(nftnl_set_elem_set(e, UInt16(NFTNL_SET_ELEM_KEY), $0.baseAddress, UInt32($0.count))) }
            if let end = element.keyEnd {
                end.withUnsafeBytes { must(nftnl_set_elem_set(e, UInt16(NFTNL_SET_ELEM_KEY_END), $0.baseAddress, UInt32($0.count))) }
            }
            if let data = element.data {
                data.withUnsafeBytes { must(nftnl_set_elem_set(e, UInt16(NFTNL_SET_ELEM_DATA), $0.baseAddress, UInt32($0.count))) }
            }
            if let verdict = element.verdict {
                let (code, chain) = verdict.kernelCode
                nftnl_set_elem_set_u32(e, UInt16(NFTNL_SET_ELEM_VERDICT), UInt32(bitPattern: code))
                if let chain { nftnl_set_elem_set_str(e, UInt16(NFTNL_SET_ELEM_CHAIN), chain) }
            }
            if element.intervalEnd {
                nftnl_set_elem_set_u32(e, UInt16(NFTNL_SET_ELEM_FLAGS), UInt32(NFT_SET_ELEM_INTERVAL_END.rawValue))
            }
            nftnl_set_elem_add(s, e)  // the set owns it from here
        }
        message(type, family: table.family.rawValue, flags: flags, sequence: sequence, into: batch,
                reserving: elementBytesPerMessage + 2048 + 2 * 256) {
            nftnl_set_elems_nlmsg_build_payload($0, s)
        }
    }

    static func rule(_ table: TableName, _ rule: Rule, setIDs: [String: UInt32], flags: UInt16, sequence: UInt32,
                     into batch: MessageBatch) {
        // libnftnl writes without bounds checks: refuse, before writing, what could pass the room.
        let bound = 512 + table.name.utf8.count + rule.chain.utf8.count + (rule.comment?.utf8.count ?? 0)
            + rule.expressions.reduce(0) { $0 + $1.encodedSizeBound }
        precondition(bound <= messageRoom, "rule in chain \(rule.chain) too large for one message")
        let r = nftnl_rule_alloc()!
        defer { nftnl_rule_free(r) }
        nftnl_rule_set_str(r, UInt16(NFTNL_RULE_TABLE.rawValue), table.name)
        nftnl_rule_set_str(r, UInt16(NFTNL_RULE_CHAIN.rawValue), rule.chain)
        for expression in rule.expressions {
            nftnl_rule_add_expr(r, expr(expression, setIDs: setIDs))  // the rule owns it from here
        }
        if let comment = rule.comment {
            // As nft writes `comment "…"`: a NUL-terminated string in the rule's user data.
            let udata = nftnl_udata_buf_alloc(UInt32(comment.utf8.count + 16))!
            defer { nftnl_udata_buf_free(udata) }
            nftnl_udata_put_strz(udata, UInt8(NFTNL_UDATA_RULE_COMMENT.rawValue), comment)
            nftnl_rule_set_data(r, UInt16(NFTNL_RULE_USERDATA.rawValue), nftnl_udata_buf_data(udata), nftnl_udata_buf_len(udata))
        }
        message(newRule, family: table.family.rawValue, flags: flags, sequence: sequence, into: batch) {
            nftnl_rule_nlmsg_build_payload($0, r)
        }
    }

    private static func expr(_ expression: Expression, setIDs: [String: UInt32]) -> OpaquePointer {
        func make(_ name: String) -> OpaquePointer { nftnl_expr_alloc(name)! }
        func u32(_ e: OpaquePointer, _ attribute: Int, _ value: UInt32) { nftnl_expr_set_u32(e, UInt16(attribute), value) }
        func bytes(_ e: OpaquePointer, _ attribute: Int, _ value: [UInt8]) {
            value.withUnsafeBytes { must(nftnl_expr_set(e, UInt16(attribute), $0.baseAddress, UInt32($0.count))) }
        }
        switch expression {
        case .payload(let base, let offset, let length, let into):
            let e = make("payload")
            u32(e, NFTNL_EXPR_PAYLOAD_DREG, into.rawValue)
            u32(e, NFTNL_EXPR_PAYLOAD_BASE, base.rawValue)
            u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset)
            u32(e, NFTNL_EXPR_PAYLOAD_LEN, length)
            return e
        case .meta(let key, let into):
            let e = make("meta")
            u32(e, NFTNL_EXPR_META_KEY, key.rawValue)
            u32(e, NFTNL_EXPR_META_DREG, into.rawValue)
            return e
        case .setMeta(let key, let from):
            let e = make("meta")
            u32(e, NFTNL_EXPR_META_KEY, key.rawValue)
            u32(e, NFTNL_EXPR_META_SREG, from.rawValue)
            return e
        case .ct(let key, let into):
            let e = make("ct")
            u32(e, NFTNL_EXPR_CT_KEY, key.rawValue)
            u32(e, NFTNL_EXPR_CT_DREG, into.rawValue)
            return e
        case .setCT(let key, let from):
            let e = make("ct")
            u32(e, NFTNL_EXPR_CT_KEY, key.rawValue)
            u32(e, NFTNL_EXPR_CT_SREG, from.rawValue)
            return e
        case .compare(let op, let register, let data):
            let e = make("cmp")
            u32(e, NFTNL_EXPR_CMP_SREG, register.rawValue)
            u32(e, NFTNL_EXPR_CMP_OP, op.rawValue)
            bytes(e, NFTNL_EXPR_CMP_DATA, data)
            return e
        case .bitwise(let into, let from, let mask, let xor):
            let e = make("bitwise")
            u32(e, NFTNL_EXPR_BITWISE_SREG, from.rawValue)
            u32(e, NFTNL_EXPR_BITWISE_DREG, into.rawValue)
            u32(e, NFTNL_EXPR_BITWISE_LEN, UInt32(mask.count))
            bytes(e, NFTNL_EXPR_BITWISE_MASK, mask)
            bytes(e, NFTNL_EXPR_BITWISE_XOR, xor)
            return e
        case .lookup(let set, let from, let into, let inverted):
            let e = make("lookup")
            u32(e, NFTNL_EXPR_LOOKUP_SREG, from.rawValue)
            if let into { u32(e, NFTNL_EXPR_LOOKUP_DREG, into.rawValue) }
            nftnl_expr_set_str(e, UInt16(NFTNL_EXPR_LOOKUP_SET), set)
            // A set created in the same transaction is found by its id, as nft does.
            if let id = setIDs[set] { u32(e, NFTNL_EXPR_LOOKUP_SET_ID, id) }
            if inverted { u32(e, NFTNL_EXPR_LOOKUP_FLAGS, UInt32(NFT_LOOKUP_F_INV.rawValue)) }
            return e
        case .immediate(let register, let data):
            let e = make("immediate")
            u32(e, NFTNL_EXPR_IMM_DREG, register.rawValue)
            bytes(e, NFTNL_EXPR_IMM_DATA, data)
            return e
        case .verdict(let verdict):
            let e = make("immediate")
            u32(e, NFTNL_EXPR_IMM_DREG, Register.verdict.rawValue)
            let (code, chain) = verdict.kernelCode
            u32(e, NFTNL_EXPR_IMM_VERDICT, UInt32(bitPattern: code))
            if let chain { nftnl_expr_set_str(e, UInt16(NFTNL_EXPR_IMM_CHAIN), chain) }
            return e
        case .masquerade(let fullyRandom):
            let e = make("masq")
            if fullyRandom { u32(e, NFTNL_EXPR_MASQ_FLAGS, UInt32(NF_NAT_RANGE_PROTO_RANDOM_FULLY)) }
            return e
        case .reject(let type, let code):
            let e = make("reject")
            u32(e, NFTNL_EXPR_REJECT_TYPE, type)
            // A TCP reset has no code: the kernel neither keeps nor reports one.
            if type != UInt32(NFT_REJECT_TCP_RST.rawValue) { nftnl_expr_set_u8(e, UInt16(NFTNL_EXPR_REJECT_CODE), code) }
            return e
        case .counter:
            return make("counter")
        }
    }

    // MARK: - Reading requests

    /// GETTABLE for one table: its attributes, or ENOENT.
    static func getTable(_ name: TableName, sequence: UInt32, into batch: MessageBatch) {
        table(getTable, name, flags: ack, sequence: sequence, into: batch)
    }

    /// GETCHAIN dump of the table's family (the kernel dumps every table's chains; the reader filters).
    static func dumpChains(_ table: TableName, sequence: UInt32, into batch: MessageBatch) {
        let c = nftnl_chain_alloc()!
        defer { nftnl_chain_free(c) }
        nftnl_chain_set_str(c, UInt16(NFTNL_CHAIN_TABLE.rawValue), table.name)
        message(getChain, family: table.family.rawValue, flags: dump, sequence: sequence, into: batch) {
            nftnl_chain_nlmsg_build_payload($0, c)
        }
    }

    /// GETSET dump of one table's sets, or GETSET of one set when `name` is given.
    static func getSets(_ table: TableName, name: String? = nil, sequence: UInt32, into batch: MessageBatch) {
        let s = nftnl_set_alloc()!
        defer { nftnl_set_free(s) }
        nftnl_set_set_str(s, UInt16(NFTNL_SET_TABLE.rawValue), table.name)
        if let name { nftnl_set_set_str(s, UInt16(NFTNL_SET_NAME.rawValue), name) }
        message(getSet, family: table.family.rawValue, flags: name == nil ? dump : ack, sequence: sequence, into: batch) {
            nftnl_set_nlmsg_build_payload($0, s)
        }
    }

    /// GETSETELEM dump of one set.
    static func dumpElements(_ table: TableName, set name: String, sequence: UInt32, into batch: MessageBatch) {
        let s = nftnl_set_alloc()!
        defer { nftnl_set_free(s) }
        nftnl_set_set_str(s, UInt16(NFTNL_SET_TABLE.rawValue), table.name)
        nftnl_set_set_str(s, UInt16(NFTNL_SET_NAME.rawValue), name)
        message(getSetElement, family: table.family.rawValue, flags: dump, sequence: sequence, into: batch) {
            nftnl_set_elems_nlmsg_build_payload($0, s)
        }
    }

    /// GETRULE dump filtered by table.
    static func dumpRules(_ table: TableName, sequence: UInt32, into batch: MessageBatch) {
        let r = nftnl_rule_alloc()!
        defer { nftnl_rule_free(r) }
        nftnl_rule_set_str(r, UInt16(NFTNL_RULE_TABLE.rawValue), table.name)
        message(getRule, family: table.family.rawValue, flags: dump, sequence: sequence, into: batch) {
            nftnl_rule_nlmsg_build_payload($0, r)
        }
    }

    // MARK: - Parsing (each reply passes ReplyShape first: libnftnl trusts what it parses)

    /// The received message with its netlink header rebuilt in front, as libnftnl's parsers want it.
    /// The payload is zero-padded to 4 bytes as `ReplyShape` saw it: libmnl walks attributes up to
    /// the aligned end of the message, so an attribute may run into the padding.
    private static func withHeader<R>(_ message: NetlinkMessage, _ body: (UnsafePointer<nlmsghdr>) throws -> R) rethrows -> R {
        let headerLength = Int(cnftnl_nlmsg_hdrlen())
        let payload = ReplyShape.padded(message.payload)
        var bytes = [UInt8](repeating: 0, count: headerLength + payload.count)
        bytes.replaceSubrange(headerLength..., with: payload)
        return try bytes.withUnsafeMutableBytes { raw in
            let nlh = raw.baseAddress!.assumingMemoryBound(to: nlmsghdr.self)
            nlh.pointee.nlmsg_len = UInt32(raw.count)
            nlh.pointee.nlmsg_type = message.type
            nlh.pointee.nlmsg_flags = message.flags
            nlh.pointee.nlmsg_seq = message.sequence
            nlh.pointee.nlmsg_pid = message.portID
            return try body(UnsafePointer(nlh))
        }
    }

    /// Runs a libnftnl parser; its failure as an error naming what was parsed.
    private static func parse(_ what: String, _ call: () -> Int32) throws(NFTablesError) {
        try retrying("parse \(what)", call)
    }

    private static func string(_ pointer: UnsafePointer<CChar>?) -> String? { pointer.map { String(cString: $0) } }

    /// A chain of the dump: its table and the chain.
    static func parseChain(_ message: NetlinkMessage) throws -> (table: String, chain: Chain) {
        try ReplyShape.check(message, as: .chain)
        return try withHeader(message) { nlh in
            let c = nftnl_chain_alloc()!
            defer { nftnl_chain_free(c) }
            try parse("chain") { nftnl_chain_nlmsg_parse(nlh, c) }
            let table = string(nftnl_chain_get_str(c, UInt16(NFTNL_CHAIN_TABLE.rawValue))) ?? ""
            let name = string(nftnl_chain_get_str(c, UInt16(NFTNL_CHAIN_NAME.rawValue))) ?? ""
            var chain = Chain(name: name)
            if nftnl_chain_is_set(c, UInt16(NFTNL_CHAIN_HOOKNUM.rawValue)) {
                let typeName = string(nftnl_chain_get_str(c, UInt16(NFTNL_CHAIN_TYPE.rawValue))) ?? ""
                guard let type = ChainHook.ChainType(rawValue: typeName),
                      let hook = ChainHook.Hook(rawValue: nftnl_chain_get_u32(c, UInt16(NFTNL_CHAIN_HOOKNUM.rawValue)))
                else { throw unsupported("chain \(name): type \(typeName) hook \(nftnl_chain_get_u32(c, UInt16(NFTNL_CHAIN_HOOKNUM.rawValue)))") }
                chain.hook = ChainHook(type: type, hook: hook, priority: nftnl_chain_get_s32(c, UInt16(NFTNL_CHAIN_PRIO.rawValue)))
            }
            return (table, chain)
        }
    }

    /// A set of the dump: its table and spec; nil for the anonymous sets nft makes for inline `{ … }`.
    static func parseSet(_ message: NetlinkMessage) throws -> (table: String, set: SetSpec)? {
        try ReplyShape.check(message, as: .set)
        return try withHeader(message) { nlh -> (table: String, set: SetSpec)? in
            let s = nftnl_set_alloc()!
            defer { nftnl_set_free(s) }
            try parse("set") { nftnl_set_nlmsg_parse(nlh, s) }
            let table = string(nftnl_set_get_str(s, UInt16(NFTNL_SET_TABLE.rawValue))) ?? ""
            let name = string(nftnl_set_get_str(s, UInt16(NFTNL_SET_NAME.rawValue))) ?? ""
            let flags = nftnl_set_get_u32(s, UInt16(NFTNL_SET_FLAGS.rawValue))
            if flags & UInt32(NFT_SET_ANONYMOUS.rawValue) != 0 { return nil }
            // nft's concatenated type: 6 bits a field, first field highest.
            var key: [SetField] = []
            var keyType = nftnl_set_get_u32(s, UInt16(NFTNL_SET_KEY_TYPE.rawValue))
            while keyType != 0 {
                guard let field = SetField(rawValue: keyType & 0x3f) else { throw unsupported("set \(name): key type \(keyType & 0x3f)") }
                key.insert(field, at: 0)
                keyType >>= 6
            }
            var spec = SetSpec(name: name, key: key, interval: flags & UInt32(NFT_SET_INTERVAL.rawValue) != 0)
            if flags & UInt32(NFT_SET_MAP.rawValue) != 0 {
                let dataType = nftnl_set_get_u32(s, UInt16(NFTNL_SET_DATA_TYPE.rawValue))
                guard let data = dataType == verdictDataType ? .verdict : SetField(rawValue: dataType) else {
                    throw unsupported("map \(name): data type \(dataType)")
                }
                spec.data = data
            }
            return (table, spec)
        }
    }

    /// One message of a set's element dump: table, set and its elements as the kernel holds them.
    static func parseElements(_ message: NetlinkMessage) throws -> (table: String, set: String, elements: [KernelElement]) {
        try ReplyShape.check(message, as: .setElements)
        return try withHeader(message) { nlh in
            let s = nftnl_set_alloc()!
            defer { nftnl_set_free(s) }
            try parse("set elements") { nftnl_set_elems_nlmsg_parse(nlh, s) }
            let table = string(nftnl_set_get_str(s, UInt16(NFTNL_SET_TABLE.rawValue))) ?? ""
            let name = string(nftnl_set_get_str(s, UInt16(NFTNL_SET_NAME.rawValue))) ?? ""
            var out: [KernelElement] = []
            let iterator = nftnl_set_elems_iter_create(s)!
            defer { nftnl_set_elems_iter_destroy(iterator) }
            while let e = nftnl_set_elems_iter_next(iterator) {  // returns the current element, then advances
                func bytes(_ attribute: Int) -> [UInt8]? {
                    guard nftnl_set_elem_is_set(e, UInt16(attribute)) else { return nil }
                    var length: UInt32 = 0
                    guard let p = nftnl_set_elem_get(e, UInt16(attribute), &length) else { return nil }
                    return Array(UnsafeRawBufferPointer(start: p, count: Int(length)))
                }
                var element = KernelElement(key: bytes(Int(NFTNL_SET_ELEM_KEY)) ?? [],
                                            keyEnd: bytes(Int(NFTNL_SET_ELEM_KEY_END)),
                                            data: bytes(Int(NFTNL_SET_ELEM_DATA)))
                if nftnl_set_elem_is_set(e, UInt16(NFTNL_SET_ELEM_VERDICT)) {
                    let code = Int32(bitPattern: nftnl_set_elem_get_u32(e, UInt16(NFTNL_SET_ELEM_VERDICT)))
                    let chain = string(nftnl_set_elem_get_str(e, UInt16(NFTNL_SET_ELEM_CHAIN)))
                    guard let verdict = Verdict(kernelCode: code, chain: chain) else { throw unsupported("set \(name): verdict \(code)") }
                    element.verdict = verdict
                    element.data = nil
                }
                if nftnl_set_elem_is_set(e, UInt16(NFTNL_SET_ELEM_FLAGS)) {
                    element.intervalEnd = nftnl_set_elem_get_u32(e, UInt16(NFTNL_SET_ELEM_FLAGS))
                        & UInt32(NFT_SET_ELEM_INTERVAL_END.rawValue) != 0
                }
                out.append(element)
            }
            return (table, name, out)
        }
    }

    /// A rule of the dump: its table and the rule, without handle, position or counter values.
    static func parseRule(_ message: NetlinkMessage) throws -> (table: String, rule: Rule) {
        try ReplyShape.check(message, as: .rule)
        return try withHeader(message) { nlh in
            let r = nftnl_rule_alloc()!
            defer { nftnl_rule_free(r) }
            try parse("rule") { nftnl_rule_nlmsg_parse(nlh, r) }
            let table = string(nftnl_rule_get_str(r, UInt16(NFTNL_RULE_TABLE.rawValue))) ?? ""
            let chain = string(nftnl_rule_get_str(r, UInt16(NFTNL_RULE_CHAIN.rawValue))) ?? ""
            var expressions: [Expression] = []
            let iterator = nftnl_expr_iter_create(r)!
            defer { nftnl_expr_iter_destroy(iterator) }
            while let e = nftnl_expr_iter_next(iterator) {
                expressions.append(try parseExpr(e, chain: chain))
            }
            var comment: String?
            if nftnl_rule_is_set(r, UInt16(NFTNL_RULE_USERDATA.rawValue)) {
                var length: UInt32 = 0
                if let data = nftnl_rule_get_data(r, UInt16(NFTNL_RULE_USERDATA.rawValue), &length) {
                    comment = ruleComment(data, length: Int(length))
                }
            }
            return (table, Rule(chain: chain, expressions, comment: comment))
        }
    }

    /// The comment in a rule's user data (type-length-value records of one byte each).
    private static func ruleComment(_ data: UnsafeRawPointer, length: Int) -> String? {
        let end = data + length
        var attribute = OpaquePointer(data)
        while UnsafeRawPointer(attribute) + 2 <= end {
            let size = Int(nftnl_udata_len(attribute))
            guard UnsafeRawPointer(attribute) + 2 + size <= end else { return nil }
            if nftnl_udata_type(attribute) == UInt8(NFTNL_UDATA_RULE_COMMENT.rawValue) {
                let value = UnsafeRawBufferPointer(start: nftnl_udata_get(attribute), count: size)
                return String(decoding: value.prefix { $0 != 0 }, as: UTF8.self)
            }
            attribute = nftnl_udata_next(attribute)
        }
        return nil
    }

    private static func unsupported(_ what: String) -> NFTablesError {
        NFTablesError(errno: .protocolError, operation: "read \(what) that kipvs does not write")
    }

    private static func parseExpr(_ e: OpaquePointer, chain: String) throws -> Expression {
        func has(_ attribute: Int) -> Bool { nftnl_expr_is_set(e, UInt16(attribute)) }
        func u32(_ attribute: Int) -> UInt32 { nftnl_expr_get_u32(e, UInt16(attribute)) }
        func register(_ attribute: Int) -> Register { Register(kernel: u32(attribute)) }
        func bytes(_ attribute: Int) -> [UInt8] {
            var length: UInt32 = 0
            guard let p = nftnl_expr_get(e, UInt16(attribute), &length) else { return [] }
            return Array(UnsafeRawBufferPointer(start: p, count: Int(length)))
        }
        let name = string(nftnl_expr_get_str(e, UInt16(NFTNL_EXPR_NAME))) ?? ""
        func fail(_ detail: String = "") -> NFTablesError { unsupported("rule in chain \(chain): expression \(name)\(detail)") }
        switch name {
        case "payload":
            guard !has(NFTNL_EXPR_PAYLOAD_SREG), let base = Expression.PayloadBase(rawValue: u32(NFTNL_EXPR_PAYLOAD_BASE)) else { throw fail() }
            return .payload(base: base, offset: u32(NFTNL_EXPR_PAYLOAD_OFFSET), length: u32(NFTNL_EXPR_PAYLOAD_LEN),
                            into: register(NFTNL_EXPR_PAYLOAD_DREG))
        case "meta":
            guard let key = Expression.MetaKey(rawValue: u32(NFTNL_EXPR_META_KEY)) else { throw fail(" key \(u32(NFTNL_EXPR_META_KEY))") }
            return has(NFTNL_EXPR_META_SREG) ? .setMeta(key, from: register(NFTNL_EXPR_META_SREG)) : .meta(key, into: register(NFTNL_EXPR_META_DREG))
        case "ct":
            guard let key = Expression.CTKey(rawValue: u32(NFTNL_EXPR_CT_KEY)), !has(NFTNL_EXPR_CT_DIR) else { throw fail(" key \(u32(NFTNL_EXPR_CT_KEY))") }
            return has(NFTNL_EXPR_CT_SREG) ? .setCT(key, from: register(NFTNL_EXPR_CT_SREG)) : .ct(key, into: register(NFTNL_EXPR_CT_DREG))
        case "cmp":
            guard let op = Expression.CompareOperator(rawValue: u32(NFTNL_EXPR_CMP_OP)) else { throw fail() }
            return .compare(op, register(NFTNL_EXPR_CMP_SREG), bytes(NFTNL_EXPR_CMP_DATA))
        case "bitwise":
            // Kernels since 5.6 report the operation; kipvs writes only the default, mask-and-xor (0).
            guard !has(NFTNL_EXPR_BITWISE_OP) || u32(NFTNL_EXPR_BITWISE_OP) == 0 else { throw fail(" operation") }
            return .bitwise(into: register(NFTNL_EXPR_BITWISE_DREG), from: register(NFTNL_EXPR_BITWISE_SREG),
                            mask: bytes(NFTNL_EXPR_BITWISE_MASK), xor: bytes(NFTNL_EXPR_BITWISE_XOR))
        case "lookup":
            let set = string(nftnl_expr_get_str(e, UInt16(NFTNL_EXPR_LOOKUP_SET))) ?? ""
            return .lookup(set: set, from: register(NFTNL_EXPR_LOOKUP_SREG),
                           into: has(NFTNL_EXPR_LOOKUP_DREG) ? register(NFTNL_EXPR_LOOKUP_DREG) : nil,
                           inverted: has(NFTNL_EXPR_LOOKUP_FLAGS) && u32(NFTNL_EXPR_LOOKUP_FLAGS) & UInt32(NFT_LOOKUP_F_INV.rawValue) != 0)
        case "immediate":
            let destination = register(NFTNL_EXPR_IMM_DREG)
            if destination == .verdict {
                let code = Int32(bitPattern: u32(NFTNL_EXPR_IMM_VERDICT))
                guard let verdict = Verdict(kernelCode: code, chain: string(nftnl_expr_get_str(e, UInt16(NFTNL_EXPR_IMM_CHAIN)))) else {
                    throw fail(" verdict \(code)")
                }
                return .verdict(verdict)
            }
            return .immediate(destination, bytes(NFTNL_EXPR_IMM_DATA))
        case "masq":
            guard !has(NFTNL_EXPR_MASQ_REG_PROTO_MIN) else { throw fail(" ports") }
            let flags = has(NFTNL_EXPR_MASQ_FLAGS) ? u32(NFTNL_EXPR_MASQ_FLAGS) : 0
            return .masquerade(fullyRandom: flags & UInt32(NF_NAT_RANGE_PROTO_RANDOM_FULLY) != 0)
        case "reject":
            return .reject(type: u32(NFTNL_EXPR_REJECT_TYPE),
                           code: has(NFTNL_EXPR_REJECT_CODE) ? nftnl_expr_get_u8(e, UInt16(NFTNL_EXPR_REJECT_CODE)) : 0)
        case "counter":
            return .counter
        default:
            throw fail()
        }
    }
}

/// Runs a libnftnl call that fails with a negative result and errno: again while it fails with
/// EINTR, otherwise the errno is read on the line after the call. libnftnl does not always set
/// errno, so it is cleared first, and a failure that leaves it clear reads as EPROTO.
@inline(never)
private func retrying(_ operation: @autoclosure () -> String, _ call: () -> Int32) throws(NFTablesError) {
    while true {
        Glibc.errno = 0
        if call() >= 0 { return }
        let code = Errno(rawValue: Glibc.errno)
        if code == .interrupted { continue }
        throw NFTablesError(errno: code.rawValue != 0 ? code : .protocolError, operation: operation())
    }
}

/// A setter that fails only when memory runs out or the attribute is unknown: a bug, or the end.
private func must(_ result: Int32, _ file: StaticString = #file, _ line: UInt = #line) {
    precondition(result >= 0, "libnftnl refused an attribute", file: file, line: line)
}

extension Expression {
    /// More than the bytes it takes in a NEWRULE message: names, attribute headers and nests, data.
    var encodedSizeBound: Int {
        switch self {
        case .compare(_, _, let data), .immediate(_, let data): 128 + data.count
        case .bitwise(_, _, let mask, let xor): 128 + mask.count + xor.count
        case .lookup(let set, _, _, _): 128 + set.utf8.count
        case .verdict(.jump(let chain)), .verdict(.goto(let chain)): 128 + chain.utf8.count
        default: 128
        }
    }
}

extension Register {
    /// The kernel reports a 32-bit register that starts a 16-byte one by the 16-byte number
    /// (NFT_REG32_00 comes back as NFT_REG_1): map those back to the 32-bit numbering.
    init(kernel value: UInt32) {
        let reg = UInt32(NFT_REG_1.rawValue)
        let last = UInt32(NFT_REG_4.rawValue)
        self.init(rawValue: (reg...last).contains(value) ? Register.first.rawValue + (value - reg) * 4 : value)
    }
}

extension Verdict {
    /// The kernel's verdict code (`NF_ACCEPT`, `NFT_JUMP`, …) and the chain it names.
    var kernelCode: (Int32, String?) {
        switch self {
        case .accept: (Int32(NF_ACCEPT), nil)
        case .drop: (Int32(NF_DROP), nil)
        case .return: (NFT_RETURN.rawValue, nil)
        case .jump(let chain): (NFT_JUMP.rawValue, chain)
        case .goto(let chain): (NFT_GOTO.rawValue, chain)
        }
    }

    init?(kernelCode code: Int32, chain: String?) {
        switch code {
        case Int32(NF_ACCEPT): self = .accept
        case Int32(NF_DROP): self = .drop
        case NFT_RETURN.rawValue: self = .return
        case NFT_JUMP.rawValue: self = .jump(chain ?? "")
        case NFT_GOTO.rawValue: self = .goto(chain ?? "")
        default: return nil
        }
    }
}

extension SetField {
    /// nft's `enum byteorder` for the field, as its set user data records it: 1 host, 2 big-endian.
    var nftByteOrder: UInt32 {
        switch self {
        case .mark, .verdict: 1
        case .ipv4Address, .ipv6Address, .inetProtocol, .inetService: 2
        }
    }
}
