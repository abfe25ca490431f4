// API server responses as the API source reads them: list pages and watch event lines of
// Services, EndpointSlices and the agent's Node. The first byte picks the collection and the
// shape, and whether the rest is read as text (invalid UTF-8 replaced, as the client makes a
// String of a body) or as the bytes that came.
import Foundation
import FuzzSupport
@testable import KubernetesSource
import Proxy

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    guard let selector = bytes.first else { return 0 }
    let text = String(decoding: bytes.dropFirst(), as: UTF8.self)
    let body = Data(bytes.dropFirst())
    // A MalformedResponse is an answer too: only a trap or a bad access is a finding.
    switch selector % 12 {
    case 0: use(Result { try APIResource.services.decodeList(text) })
    case 1: use(Result { try APIResource.services.decodeEvent(text) })
    case 2: use(Result { try APIResource.endpointSlices.decodeList(text) })
    case 3: use(Result { try APIResource.endpointSlices.decodeEvent(text) })
    case 4: use(Result { try APIResource.node(named: "node-a").decodeList(text) })
    case 5: use(Result { try APIResource.node(named: "node-a").decodeEvent(text) })
    case 6: use(Result { try APIResource.services.decodeList(body) })
    case 7: use(Result { try APIResource.services.decodeEvent(body) })
    case 8: use(Result { try APIResource.endpointSlices.decodeList(body) })
    case 9: use(Result { try APIResource.endpointSlices.decodeEvent(body) })
    case 10: use(Result { try APIResource.node(named: "node-a").decodeList(body) })
    default: use(Result { try APIResource.node(named: "node-a").decodeEvent(body) })
    }
    return 0
}

@main enum Main {
    static func main() { runFuzzer() }
}
