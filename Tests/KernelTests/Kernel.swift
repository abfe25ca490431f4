import Foundation
import IPVS

/// The real kernel, and `ipvsadm` as the independent witness of what it holds.
enum Kernel {
    static let hasIPVS = FileManager.default.fileExists(atPath: "/proc/net/ip_vs") && getuid() == 0

    @discardableResult
    static func run(_ arguments: [String], input: String? = nil) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        let inPipe = Pipe()
        process.standardInput = inPipe
        try process.run()
        if let input { inPipe.fileHandleForWriting.write(Data(input.utf8)) }
        try inPipe.fileHandleForWriting.close()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// `ipvsadm -Sn`, one line per entry.
    static func ipvsadmSave() throws -> [String] {
        try run(["ipvsadm", "-S", "-n"]).output.split(separator: "\n").map(String.init)
    }

    static func ipvsadm(_ arguments: String) throws {
        let result = try run(["ipvsadm"] + arguments.split(separator: " ").map(String.init))
        guard result.status == 0 else { throw WitnessError(message: "ipvsadm \(arguments): \(result.output)") }
    }

    /// A fresh handle on an empty table.
    static func clean() throws -> KernelIPVS {
        let ipvs = try KernelIPVS()
        try ipvs.flush()
        return ipvs
    }
}

struct WitnessError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

extension IPAddress {
    static func v(_ text: String) -> IPAddress { IPAddress(text)! }
}
