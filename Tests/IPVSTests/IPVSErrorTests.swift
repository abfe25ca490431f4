import Netlink
import Testing
@testable import IPVS

@Suite struct IPVSErrorTests {
    static let web = VirtualServerKey.service(.tcp, IPAddress("10.96.0.10")!, 80)
    static let real = RealServer(address: IPAddress("10.244.0.5")!, port: 8080)

    /// The kernel's errnos as IPVS uses them; ENOENT means the real server or the scheduler by operation.
    @Test(arguments: [
        (Errno.fileExists, IPVSOperation.addVirtualServer(VirtualServer(key: web, scheduler: "rr")), IPVSError.Kind.alreadyExists),
        (.noSuchProcess, .deleteVirtualServer(web), .noSuchVirtualServer),
        (.noSuchFileOrDirectory, .deleteRealServer(web, real.key), .noSuchRealServer),
        (.noSuchFileOrDirectory, .addVirtualServer(VirtualServer(key: web, scheduler: "nosuch")), .unknownScheduler),
        (.noSuchFileOrDirectory, .addRealServer(web, real), .other),
        (.outOfRange, .addRealServer(web, real), .outOfRange),
        (.notPermitted, .addRealServer(web, real), .permissionDenied),
        (.noBufferSpace, .addRealServer(web, real), .stateUnknown),
        (.noMemory, .addRealServer(web, real), .other),
    ])
    func classifiesByErrnoAndOperation(errno: Errno, operation: IPVSOperation, kind: IPVSError.Kind) {
        let error = IPVSError.classify(NetlinkError(errno: errno, operation: operation.description), for: operation)
        #expect(error.kind == kind)
        #expect(error.errno == errno)
    }

    @Test func isCaughtByItsErrno() {
        func caught(_ error: IPVSError) -> Bool {
            do { throw error } catch Errno.noSuchProcess { return true } catch { return false }
        }
        #expect(caught(IPVSError(kind: .noSuchVirtualServer, underlying: NetlinkError(errno: .noSuchProcess, operation: "x"))))
        #expect(!caught(IPVSError(kind: .alreadyExists, underlying: NetlinkError(errno: .fileExists, operation: "x"))))
    }
}
