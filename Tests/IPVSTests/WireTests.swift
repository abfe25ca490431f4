import CMnl
import Testing
@testable import IPVS

/// The Swift copies of the IPVS numbers must equal the kernel header's.
@Suite struct WireTests {
    @Test func commandsMatchTheHeader() {
        #expect(Int(Wire.Command.newService) == IPVS_CMD_NEW_SERVICE)
        #expect(Int(Wire.Command.setService) == IPVS_CMD_SET_SERVICE)
        #expect(Int(Wire.Command.delService) == IPVS_CMD_DEL_SERVICE)
        #expect(Int(Wire.Command.getService) == IPVS_CMD_GET_SERVICE)
        #expect(Int(Wire.Command.newDest) == IPVS_CMD_NEW_DEST)
        #expect(Int(Wire.Command.setDest) == IPVS_CMD_SET_DEST)
        #expect(Int(Wire.Command.delDest) == IPVS_CMD_DEL_DEST)
        #expect(Int(Wire.Command.getDest) == IPVS_CMD_GET_DEST)
        #expect(Int(Wire.Command.setConfig) == IPVS_CMD_SET_CONFIG)
        #expect(Int(Wire.Command.getConfig) == IPVS_CMD_GET_CONFIG)
        #expect(Int(Wire.Command.getInfo) == IPVS_CMD_GET_INFO)
        #expect(Int(Wire.Command.flush) == IPVS_CMD_FLUSH)
    }

    @Test func attributesMatchTheHeader() {
        #expect(Wire.Top.service == IPVS_CMD_ATTR_SERVICE)
        #expect(Wire.Top.dest == IPVS_CMD_ATTR_DEST)
        #expect(Wire.Top.timeoutTCP == IPVS_CMD_ATTR_TIMEOUT_TCP)
        #expect(Wire.Top.timeoutTCPFin == IPVS_CMD_ATTR_TIMEOUT_TCP_FIN)
        #expect(Wire.Top.timeoutUDP == IPVS_CMD_ATTR_TIMEOUT_UDP)
        #expect(Wire.Service.af == IPVS_SVC_ATTR_AF)
        #expect(Wire.Service.proto == IPVS_SVC_ATTR_PROTOCOL)
        #expect(Wire.Service.addr == IPVS_SVC_ATTR_ADDR)
        #expect(Wire.Service.port == IPVS_SVC_ATTR_PORT)
        #expect(Wire.Service.fwmark == IPVS_SVC_ATTR_FWMARK)
        #expect(Wire.Service.schedName == IPVS_SVC_ATTR_SCHED_NAME)
        #expect(Wire.Service.flags == IPVS_SVC_ATTR_FLAGS)
        #expect(Wire.Service.timeout == IPVS_SVC_ATTR_TIMEOUT)
        #expect(Wire.Service.netmask == IPVS_SVC_ATTR_NETMASK)
        #expect(Wire.Service.stats == IPVS_SVC_ATTR_STATS)
        #expect(Wire.Service.peName == IPVS_SVC_ATTR_PE_NAME)
        #expect(Wire.Service.stats64 == IPVS_SVC_ATTR_STATS64)
        #expect(Wire.Dest.addr == IPVS_DEST_ATTR_ADDR)
        #expect(Wire.Dest.port == IPVS_DEST_ATTR_PORT)
        #expect(Wire.Dest.fwdMethod == IPVS_DEST_ATTR_FWD_METHOD)
        #expect(Wire.Dest.weight == IPVS_DEST_ATTR_WEIGHT)
        #expect(Wire.Dest.upperThreshold == IPVS_DEST_ATTR_U_THRESH)
        #expect(Wire.Dest.lowerThreshold == IPVS_DEST_ATTR_L_THRESH)
        #expect(Wire.Dest.activeConns == IPVS_DEST_ATTR_ACTIVE_CONNS)
        #expect(Wire.Dest.inactiveConns == IPVS_DEST_ATTR_INACT_CONNS)
        #expect(Wire.Dest.persistConns == IPVS_DEST_ATTR_PERSIST_CONNS)
        #expect(Wire.Dest.stats == IPVS_DEST_ATTR_STATS)
        #expect(Wire.Dest.addrFamily == IPVS_DEST_ATTR_ADDR_FAMILY)
        #expect(Wire.Dest.stats64 == IPVS_DEST_ATTR_STATS64)
        #expect(Wire.Info.version == IPVS_INFO_ATTR_VERSION)
        #expect(Wire.Info.connTabSize == IPVS_INFO_ATTR_CONN_TAB_SIZE)
    }
}
