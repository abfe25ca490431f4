import CNftnl
import Netlink
import Testing
@testable import NFTables

/// Replies libnftnl would end the process on, or read past, are refused before it sees them.
@Suite struct ReplyShapeTests {
    /// One attribute: length, type, payload, padding.
    static func tlv(_ type: some RawRepresentable<UInt32>, _ payload: [UInt8]) -> [UInt8] {
        let length = 4 + payload.count
        return [UInt8(length & 0xff), UInt8(length >> 8), UInt8(type.rawValue & 0xff), UInt8(type.rawValue >> 8)] + payload
            + [UInt8](repeating: 0, count: (4 - payload.count % 4) % 4)
    }

    static func string(_ text: String) -> [UInt8] { Array(text.utf8) + [0] }
    static func u32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value.bigEndian >> (8 * $0)) } }

    static func reply(_ message: nf_tables_msg_types, _ attributes: [UInt8]) -> NetlinkMessage {
        NetlinkMessage(type: UInt16(NFNL_SUBSYS_NFTABLES) << 8 | UInt16(message.rawValue), flags: 2, sequence: 1, portID: 0,
                       payload: [1, 0, 0, 0] + attributes)  // nfgenmsg: inet
    }

    static let chainName = tlv(NFTA_CHAIN_TABLE, string("kipvs")) + tlv(NFTA_CHAIN_NAME, string("services"))

    func refused(_ message: NetlinkMessage, _ parse: (NetlinkMessage) throws -> Void, saying detail: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(sourceLocation: sourceLocation) {
            try parse(message)
        } throws: { error in
            guard let error = error as? NFTablesError, error.errno == .protocolError else { return false }
            return error.operation.hasSuffix(detail)
        }
    }

    @Test func aWellFormedChainParses() throws {
        let chain = try Libnftnl.parseChain(Self.reply(NFT_MSG_NEWCHAIN, Self.chainName + Self.tlv(NFTA_CHAIN_USE, Self.u32(1))))
        #expect(chain.table == "kipvs")
        #expect(chain.chain == Chain(name: "services"))
    }

    /// libnftnl exits the process ("kernel ABI is broken") on a u32 of 2 bytes.
    @Test func anAttributeOfTheWrongSize() {
        refused(Self.reply(NFT_MSG_NEWCHAIN, Self.chainName + Self.tlv(NFTA_CHAIN_USE, [0, 1])), { _ = try Libnftnl.parseChain($0) },
                saying: "chain.\(NFTA_CHAIN_USE.rawValue): 2 bytes where 4 belong")
    }

    /// libnftnl copies names with strdup, past the attribute when the NUL is missing.
    @Test func aStringWithoutItsNUL() {
        refused(Self.reply(NFT_MSG_NEWCHAIN, Self.tlv(NFTA_CHAIN_NAME, Array("services".utf8))), { _ = try Libnftnl.parseChain($0) },
                saying: "a string without its NUL")
    }

    /// libnftnl looks an expression up by a null name when it has none.
    @Test func anExpressionWithoutAName() {
        let expression = Self.tlv(NFTA_LIST_ELEM, Self.tlv(NFTA_EXPR_DATA, []))
        let rule = Self.tlv(NFTA_RULE_TABLE, Self.string("kipvs")) + Self.tlv(NFTA_RULE_EXPRESSIONS, expression)
        refused(Self.reply(NFT_MSG_NEWRULE, rule), { _ = try Libnftnl.parseRule($0) }, saying: "an expression without a name")
    }

    /// libnftnl reads a jump's chain from a table it never cleared.
    @Test func aJumpWithoutItsChain() {
        let verdict = Self.tlv(NFTA_DATA_VERDICT, Self.tlv(NFTA_VERDICT_CODE, Self.u32(UInt32(bitPattern: NFT_JUMP.rawValue))))
        let element = Self.tlv(NFTA_LIST_ELEM, Self.tlv(NFTA_SET_ELEM_KEY, Self.tlv(NFTA_DATA_VALUE, [10, 0, 0, 1]))
            + Self.tlv(NFTA_SET_ELEM_DATA, verdict))
        let message = Self.reply(NFT_MSG_NEWSETELEM, Self.tlv(NFTA_SET_ELEM_LIST_SET, Self.string("m")) + Self.tlv(NFTA_SET_ELEM_LIST_ELEMENTS, element))
        refused(message, { _ = try Libnftnl.parseElements($0) }, saying: "a jump without its chain")
    }

    /// libnftnl writes concatenated field lengths into an array of 16 without counting.
    @Test func moreConcatenatedFieldsThanRegisters() {
        let field = Self.tlv(NFTA_LIST_ELEM, Self.tlv(NFTA_SET_FIELD_LEN, Self.u32(4)))
        let description = Self.tlv(NFTA_SET_DESC, Self.tlv(NFTA_SET_DESC_CONCAT, Array([[UInt8]](repeating: field, count: 17).joined())))
        refused(Self.reply(NFT_MSG_NEWSET, Self.tlv(NFTA_SET_NAME, Self.string("s")) + description), { _ = try Libnftnl.parseSet($0) },
                saying: "17 concatenated fields, more than 16")
    }

    /// libnftnl lets an element's attributes through up to the set's maximum and files them in a
    /// table sized for the element's.
    @Test func anElementAttributePastTheElementsMaximum() {
        let element = Self.tlv(NFTA_LIST_ELEM, Self.tlv(nft_set_elem_attributes(rawValue: __NFTA_SET_ELEM_MAX.rawValue), Self.u32(1)))
        let message = Self.reply(NFT_MSG_NEWSETELEM, Self.tlv(NFTA_SET_ELEM_LIST_ELEMENTS, element))
        refused(message, { _ = try Libnftnl.parseElements($0) }, saying: "kipvs writes none")
    }

    /// libmnl walks attributes to the aligned end of the message: a name that ends in the padding
    /// is read from the padding, which must be there and zero.
    @Test func aNameThatRunsIntoThePadding() throws {
        var attributes = Self.tlv(NFTA_SET_TABLE, Self.string("kipvs")) + Self.tlv(NFTA_SET_KEY_TYPE, Self.u32(7))
        attributes += [16, 0, UInt8(NFTA_SET_NAME.rawValue), 0] + Array("servlookui".utf8)  // 10 of the 12 bytes claimed
        let set = try #require(try Libnftnl.parseSet(Self.reply(NFT_MSG_NEWSET, attributes)))
        #expect(set.table == "kipvs")
        #expect(set.set.name == "servlookui")
    }

    /// A list is a nest too: libnftnl exits on one of 1 to 3 bytes.
    @Test func aListTooShortForAnAttribute() {
        let message = Self.reply(NFT_MSG_NEWSETELEM, Self.tlv(NFTA_SET_ELEM_LIST_ELEMENTS, [0, 1, 0]))
        refused(message, { _ = try Libnftnl.parseElements($0) }, saying: "a nest of 3 bytes")
    }

    @Test func anotherMessageTypeOrNoHeader() {
        refused(Self.reply(NFT_MSG_NEWRULE, Self.chainName), { _ = try Libnftnl.parseChain($0) }, saying: "not \(0x0a00 | NFT_MSG_NEWCHAIN.rawValue)")
        let bare = NetlinkMessage(type: UInt16(NFNL_SUBSYS_NFTABLES) << 8 | Libnftnl.newChain, flags: 0, sequence: 1, portID: 0, payload: [1, 0])
        refused(bare, { _ = try Libnftnl.parseChain($0) }, saying: "2 bytes, without a whole nfgenmsg")
    }
}
