import IPVS
import IPVSTestKit
import Testing

/// The fake keeps the contract every `IPVSHandle` shares with the kernel; KernelTests runs the same
/// cases against the kernel in a guest.
@Suite struct FakeIPVSContractTests {
    @Test(arguments: IPVSContract.cases)
    func fakeAnswersAsTheKernelDoes(_ contractCase: IPVSContractCase) throws {
        try contractCase.run(on: FakeIPVS())
    }
}
