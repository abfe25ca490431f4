import Testing
@testable import Netlink
#if canImport(Glibc)
import Glibc
#endif

@Suite struct ErrnoTests {
    @Test func namesAndTextAreTheSystemsOwn() {
        #expect(Errno.fileExists.name == "EEXIST")
        #expect(Errno.noBufferSpace.name == "ENOBUFS")
        #expect(Errno.notSupported.name == "EOPNOTSUPP")
        #expect(Errno.noSuchFileOrDirectory.description == "No such file or directory")
        #expect(Errno(rawValue: 4095).name == "errno 4095")
    }

    @Test func matchesByNameInSwitchAndCondition() {
        func kind(_ errno: Errno) -> String {
            switch errno {
            case .fileExists: "exists"
            case .noSuchProcess, .noSuchFileOrDirectory: "missing"
            default: "other"
            }
        }
        #expect(kind(.fileExists) == "exists")
        #expect(kind(.noSuchProcess) == "missing")
        #expect(kind(.invalidArgument) == "other")
        let error = NetlinkError(errno: .noBufferSpace, operation: "read acks")
        #expect(error.errno ~= .noBufferSpace)
        #expect(!(error.errno ~= .fileExists))
    }

    @Test func catchesAnyErrorThatCarriesIt() {
        func outcome(_ error: any Error) -> String {
            do {
                throw error
            } catch Errno.noBufferSpace {
                return "lost"
            } catch Errno.fileExists {
                return "exists"
            } catch {
                return "other"
            }
        }
        #expect(outcome(NetlinkError(errno: .noBufferSpace, operation: "dump")) == "lost")
        #expect(outcome(SystemCallError(errno: .fileExists, operation: "open")) == "exists")
        #expect(outcome(NetlinkError(errno: .invalidArgument, operation: "dump")) == "other")
        #expect(outcome(CancellationError()) == "other")
    }

    @Test func errorsNameTheOperationTheTextAndTheSymbol() {
        let error = NetlinkError(errno: .fileExists, operation: "add virtual server TCP 10.96.0.10:80")
        #expect(error.description == "add virtual server TCP 10.96.0.10:80: File exists (EEXIST)")
        #expect(error.name == "EEXIST")
    }

    @Test func anAckHasNoErrorAndANackItsErrno() {
        func reply(_ code: Int32) -> NetlinkMessage {
            let raw = UInt32(bitPattern: code)
            let bytes = (0..<4).map { UInt8(truncatingIfNeeded: raw >> (8 * $0)) } + [UInt8](repeating: 0, count: 16)
            return NetlinkMessage(type: NetlinkMessage.error, flags: 0, sequence: 1, portID: 0, payload: bytes)
        }
        #expect(reply(0).errorCode == nil)
        #expect(reply(-Errno.fileExists.rawValue).errorCode == .fileExists)
        // Negating the most negative value trapped; it reads as the (meaningless) number it is.
        #expect(reply(.min).errorCode == Errno(rawValue: .min))
    }
}

@Suite struct LibCTests {
    @Test func aMissingFileIsENOENTNamingThePath() {
        #expect(throws: SystemCallError(errno: .noSuchFileOrDirectory, operation: "open /proc/sys/net/no/such/key")) {
            try LibC.readFile("/proc/sys/net/no/such/key")
        }
        #expect(throws: SystemCallError(errno: .noSuchFileOrDirectory, operation: "stat /no/such/file")) {
            try LibC.status(ofFile: "/no/such/file")
        }
    }

    @Test func readsAWholeProcFile() throws {
        let text = String(decoding: try LibC.readFile("/proc/sys/kernel/ostype"), as: UTF8.self)
        #expect(text == "Linux\n")
        #expect(try LibC.status(ofFile: "/proc/self/exe").isRegularFile)
    }

    @Test func aRefusedSocketOptionNamesTheOption() {
        // No such descriptor: EBADF.
        #expect {
            try LibC.setSocketOption(-1, level: SOL_SOCKET, SO_RCVBUF, 4096, name: "SO_RCVBUF")
        } throws: { error in
            (error as? SystemCallError)?.operation == "set socket option SO_RCVBUF to 4096"
                && (error as? SystemCallError)?.errno == .badFileDescriptor
        }
    }

    @Test func ipv6TextRoundTrips() {
        let bytes = LibC.ipv6Bytes("fd00::1")
        #expect(bytes == [0xfd] + [UInt8](repeating: 0, count: 14) + [1])
        #expect(bytes.flatMap(LibC.ipv6Text) == "fd00::1")
        #expect(LibC.ipv6Bytes("10.0.0.1") == nil)
        #expect(LibC.ipv6Text([1, 2, 3]) == nil)
        #expect(!LibC.kernelRelease().isEmpty)
    }
}

@Suite struct DatagramTests {
    @Test func splitsADatagramAndLeavesOutATruncatedTail() {
        // Two messages: an ack for seq 7, then a header that claims more than is there.
        var datagram: [UInt8] = [
            0x24, 0, 0, 0, 0x02, 0, 0, 0, 0x07, 0, 0, 0, 0, 0, 0, 0,  // nlmsghdr len=36 type=NLMSG_ERROR seq=7
            0, 0, 0, 0,  // error 0: an ack
        ]
        datagram += [UInt8](repeating: 0, count: 16)  // the request's header, echoed
        datagram += [0x40, 0, 0, 0, 0x03, 0, 0, 0]  // nlmsghdr len=64, cut short
        let messages = NetlinkMessage.messages(inDatagram: datagram)
        #expect(messages.count == 1)
        #expect(messages.first?.isError == true)
        #expect(messages.first?.sequence == 7)
        #expect(messages.first?.errorCode == nil)
        #expect(NetlinkMessage.messages(inDatagram: []).isEmpty)
    }

    /// libmnl reads a length of 2 GiB or more as negative, so such a header passed its check, and
    /// 0xffffffff aligned to 0: the split stood still, appending the same message until memory ran out.
    @Test(arguments: [UInt32.max, 0x8000_0000, 0xffff_fff0])
    func aHeaderClaimingGigabytesEndsTheSplit(length: UInt32) {
        var datagram: [UInt8] = [
            0x14, 0, 0, 0, 0x03, 0, 0x02, 0, 0x01, 0, 0, 0, 0, 0, 0, 0,  // nlmsghdr len=20 NLMSG_DONE MULTI seq=1
            0, 0, 0, 0,
        ]
        datagram += (0..<4).map { UInt8(truncatingIfNeeded: length >> (8 * $0)) } + [UInt8](repeating: 0xff, count: 28)
        let messages = NetlinkMessage.messages(inDatagram: datagram)
        #expect(messages.count == 1)
        #expect(messages.first?.isDone == true)
    }
}
