/// The generic-netlink controller: turns a family name into the `nlmsg_type` to use.
public enum GenericNetlink {
    static let controllerID: UInt16 = 0x10  // GENL_ID_CTRL
    static let getFamily: UInt8 = 3  // CTRL_CMD_GETFAMILY
    static let familyIDAttribute = 1  // CTRL_ATTR_FAMILY_ID
    static let familyNameAttribute = 2  // CTRL_ATTR_FAMILY_NAME

    /// Encodes CTRL_CMD_GETFAMILY for `name`.
    public static func encodeGetFamily(_ name: String, into batch: MessageBatch, sequence: UInt32) {
        batch.beginGeneric(family: controllerID, flags: NetlinkFlags.request | NetlinkFlags.ack,
                           sequence: sequence, command: getFamily)
        batch.put(familyNameAttribute, string: name)  // NLA_NUL_STRING: the NUL is required
        batch.end()
    }

    /// The family ID, or ENOENT when the kernel has no such family.
    public static func resolve(_ name: String, on connection: NetlinkConnection) throws -> UInt16 {
        let replies = try connection.request(operation: "resolve generic netlink family \(name)") { batch, seq in
            encodeGetFamily(name, into: batch, sequence: seq)
        }
        for reply in replies {
            if let id = reply.genericAttributes.u16(familyIDAttribute) { return id }
        }
        throw NetlinkError(errno: .noSuchFileOrDirectory, operation: "resolve generic netlink family \(name)")
    }
}
