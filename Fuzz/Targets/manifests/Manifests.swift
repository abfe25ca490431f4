// Manifest text as the file source reads it: YAML, one or many documents, or JSON.
import FuzzSupport
import Proxy

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    // A LoadError is an answer too: only a trap or a bad access is a finding.
    use(Result { () throws(LoadError) in try ManifestLoader.parse(text, source: "fuzz.yaml") })
    return 0
}

@main enum Main {
    static func main() { runFuzzer() }
}
