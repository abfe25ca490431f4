import CNftnl
import Netlink

/// A NEWSETELEM or DELSETELEM request rewritten as the kernel's dump reply would carry it: of
/// type NEWSETELEM, and with its elements typed NFTA_LIST_ELEM. libnftnl numbers the elements of a
/// request's list 1, 2, 3… (the kernel reads any type there), but the kernel's replies type them
/// all NFTA_LIST_ELEM, and libnftnl's parser insists on that.
func asElementsReply(_ message: NetlinkMessage) -> NetlinkMessage {
    var payload = message.payload
    var at = 4  // after nfgenmsg
    while at + 4 <= payload.count {
        let length = Int(payload[at]) | Int(payload[at + 1]) << 8
        let type = (Int(payload[at + 2]) | Int(payload[at + 3]) << 8) & 0x3fff
        guard length >= 4 else { break }
        if type == 3 {  // NFTA_SET_ELEM_LIST_ELEMENTS
            var inner = at + 4
            while inner + 4 <= at + length {
                let innerLength = Int(payload[inner]) | Int(payload[inner + 1]) << 8
                guard innerLength >= 4 else { break }
                payload[inner + 2] = 1  // NFTA_LIST_ELEM, keeping NLA_F_NESTED in the high byte
                payload[inner + 3] &= 0x80
                inner += (innerLength + 3) & ~3
            }
        }
        at += (length + 3) & ~3
    }
    return NetlinkMessage(type: UInt16(NFNL_SUBSYS_NFTABLES) << 8 | UInt16(NFT_MSG_NEWSETELEM.rawValue), flags: message.flags,
                          sequence: message.sequence, portID: message.portID, payload: payload)
}
