import ArgumentParser
import IPVS

@main
struct Kipvs: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "kipvs",
        abstract: "Kubernetes Services through the kernel's IPVS load balancer.",
        version: version,
        subcommands: [
            RunCommand.self, PlanCommand.self, CleanupCommand.self,
            StatusCommand.self, SaveCommand.self, RestoreCommand.self, FlushCommand.self, VersionCommand.self,
        ]
    )
}

/// Opens the kernel's IPVS, turning failure into a message an operator can act on.
func openIPVS() throws -> KernelIPVS {
    do {
        return try KernelIPVS()
    } catch let error as IPVSError {
        throw ValidationFailure(error.description)
    }
}

/// A failure that is printed as is and exits 1.
struct ValidationFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
