/// IPVS generic-netlink numbers (`<linux/ip_vs.h>`), checked against the C header by a unit test.
enum Wire {
    static let familyName = "IPVS"
    static let version: UInt8 = 1

    enum Command {
        static let newService: UInt8 = 1
        static let setService: UInt8 = 2
        static let delService: UInt8 = 3
        static let getService: UInt8 = 4
        static let newDest: UInt8 = 5
        static let setDest: UInt8 = 6
        static let delDest: UInt8 = 7
        static let getDest: UInt8 = 8
        static let setConfig: UInt8 = 12
        static let getConfig: UInt8 = 13
        static let getInfo: UInt8 = 15
        static let flush: UInt8 = 17
    }

    /// `IPVS_CMD_ATTR_*`
    enum Top {
        static let service = 1
        static let dest = 2
        static let timeoutTCP = 4
        static let timeoutTCPFin = 5
        static let timeoutUDP = 6
    }

    /// `IPVS_SVC_ATTR_*`
    enum Service {
        static let af = 1
        static let proto = 2
        static let addr = 3
        static let port = 4
        static let fwmark = 5
        static let schedName = 6
        static let flags = 7
        static let timeout = 8
        static let netmask = 9
        static let stats = 10
        static let peName = 11
        static let stats64 = 12
    }

    /// `IPVS_DEST_ATTR_*`
    enum Dest {
        static let addr = 1
        static let port = 2
        static let fwdMethod = 3
        static let weight = 4
        static let upperThreshold = 5
        static let lowerThreshold = 6
        static let activeConns = 7
        static let inactiveConns = 8
        static let persistConns = 9
        static let stats = 10
        static let addrFamily = 11
        static let stats64 = 12
    }

    /// `IPVS_STATS_ATTR_*`
    enum Stats {
        static let conns = 1
        static let inPackets = 2
        static let outPackets = 3
        static let inBytes = 4
        static let outBytes = 5
        static let cps = 6
        static let inPPS = 7
        static let outPPS = 8
        static let inBPS = 9
        static let outBPS = 10
    }

    /// `IPVS_INFO_ATTR_*`
    enum Info {
        static let version = 1
        static let connTabSize = 2
    }
}
