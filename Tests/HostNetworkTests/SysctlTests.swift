import Netlink
import Testing
@testable import HostNetwork

@Suite struct SysctlTests {
    @Test func readsTheFirstLineTrimmed() throws {
        #expect(try Sysctl.read("kernel.ostype") == "Linux")
        #expect(Sysctl.path("net.ipv4.vs.conntrack") == "/proc/sys/net/ipv4/vs/conntrack")
    }

    @Test func anEntryTheKernelLacksIsNil() throws {
        #expect(try Sysctl.read("net.no_such_module.setting") == nil)
    }

    /// A read-only entry refuses a write even to root: the error names the key, the step and the errno.
    @Test func aRefusedWriteNamesTheKey() {
        #expect(throws: Sysctl.Failure(key: "kernel.ostype", errno: .permissionDenied, operation: "write")) {
            try Sysctl.ensure("kernel.ostype", "BSD")
        }
        #expect(Sysctl.Failure(key: "kernel.ostype", errno: .permissionDenied, operation: "write").description
            == "write sysctl kernel.ostype: Permission denied (EACCES)")
    }

    @Test func writingWhatIsThereWritesNothing() throws {
        #expect(try Sysctl.ensure("kernel.ostype", "Linux") == false)
    }
}
