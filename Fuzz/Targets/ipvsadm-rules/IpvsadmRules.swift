// A rules file as `ipvsadm-restore` (and `kipvs restore`) reads it. Besides not trapping, the
// fast path for `ipvsadm -S` lines must read every line it accepts as the general parser does.
import FuzzSupport
@testable import IPVS
@testable import IPVSText

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    use(RuleParser.parse(bytes))
    for line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
        guard let fast = FastRuleLine.parse(line) else { continue }
        let general = Result { () throws(LineError) in try RuleParser.parseLine(line) }
        guard case .success(fast?) = general else {
            preconditionFailure("fast path read \(String(decoding: line, as: UTF8.self)) as \(fast), the general parser as \(general)")
        }
    }
    return 0
}

@main enum Main {
    static func main() { runFuzzer() }
}
