// API server responses as the API source reads them: list pages and watch event lines of
// Services, EndpointSlices and the agent's Node. The first byte picks the collection and the shape.
import FuzzSupport
@testable import KubernetesSource
import Proxy

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    guard let selector = bytes.first else { return 0 }
    let text = String(decoding: bytes.dropFirst(), as: UTF8.self)
    // A MalformedResponse is an answer too: only a trap or a bad access is a finding.
    switch selector % 6 {
    case 0: use(Result { try APIResource.services.decodeList(text) })
    case 1: use(Result { try APIResource.services.decodeEvent(text) })
    case 2: use(Result { try APIResource.endpointSlices.decodeList(text) })
    case 3: use(Result { try APIResource.endpointSlices.decodeEvent(text) })
    case 4: use(Result { try APIResource.node(named: "node-a").decodeList(text) })
    default: use(Result { try APIResource.node(named: "node-a").decodeEvent(text) })
    }
    return 0
}

@main enum Main {
    static func main() { runFuzzer() }
}
