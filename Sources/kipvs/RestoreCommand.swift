import ArgumentParser
import Foundation
import IPVS
import IPVSText

struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Apply `ipvsadm -R` rules from standard input, in batches.",
        discussion: """
            Every line is checked before anything is applied: a line that cannot be parsed is reported \
            with its number and nothing is applied, and so is input that cannot be read to its end. \
            Operations the kernel refuses are reported with their line numbers; the others take effect.
            """)

    @Flag(help: "Remove every virtual server before applying the rules.") var flush = false
    @Flag(help: "Print the number of netlink system calls used to standard error.") var report = false

    func run() throws {
        keepFreedMemory()
        let clock = ContinuousClock()
        let start = clock.now
        let input: [UInt8]
        do {
            input = try readStandardInput()
        } catch {
            throw ValidationFailure("restore: \(error); nothing applied")
        }
        // Every line is checked before anything is applied; the rules are then read again as they
        // are applied, so that no table of every rule is held.
        var count = 0
        do {
            try RuleParser.forEachRule(in: input) { _ in count += 1 }
        } catch let error as RuleParseError {
            throw ValidationFailure("restore: \(error); nothing applied")
        }
        let parsed = clock.now
        let ipvs = try openIPVS()
        if flush { try ipvs.flush() }
        let failures = try Restore.apply(ruleText: input, to: ipvs)
        if report {
            let c = ipvs.connection
            FileHandle.standardError.write(Data("""
                \(c.sends + c.receives) system calls (\(c.sends) sends, \(c.receives) receives) for \(count) operations
                read and check \(parsed - start), parse again and apply \(clock.now - parsed)

                """.utf8))
        }
        if !failures.isEmpty {
            throw ValidationFailure(failures.map { "restore: \($0)" }.joined(separator: "\n"))
        }
    }
}
