import Foundation
import NIOCore

/// What every accepted connection gets under HTTP, TLS for one: the test server itself speaks only
/// plain HTTP and links no TLS library.
public struct ConnectionLayer: Sendable {
    /// The URL scheme a client uses through it: `https`.
    public var scheme: String
    /// Adds the layer's handlers to a new connection's pipeline, on its event loop.
    public var configure: @Sendable (any Channel) throws -> Void

    public init(scheme: String, configure: @escaping @Sendable (any Channel) throws -> Void) {
        self.scheme = scheme
        self.configure = configure
    }
}

/// Sits under HTTP's handlers and writes bytes no HTTP encoder would: headers that never end.
final class RawOutput: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    private let eventLoop: any EventLoop
    /// Set and used on `eventLoop` only.
    private var context: ChannelHandlerContext?

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Fails once the connection is closed.
    func write(_ text: String) async throws {
        try await eventLoop.flatSubmit { () -> EventLoopFuture<Void> in
            guard let context = self.context else { return self.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
            return context.writeAndFlush(NIOAny(ByteBuffer(string: text)))
        }.get()
    }
}

/// A `…List` of one resource, `bytes` long (or as short as its frame, if that is longer), in
/// chunks of about a MiB made one at a time: distinct objects named `bulk-00000000` on, then
/// spaces to make up the length.
struct BulkList: Sequence {
    let bytes: Int
    private let head: [UInt8]
    private let tail: [UInt8]
    /// An item's text before and after its 8-digit number.
    private let itemHead: [UInt8]
    private let itemTail: [UInt8]
    private let count: Int
    private let padding: Int

    init(resource: Resource, resourceVersion: Int, bytes: Int) {
        let placeholder = "bulk-00000000"
        var item = resource == .services
            ? Objects.service(placeholder, clusterIP: "10.96.0.1")
            : Objects.endpointSlice(placeholder, service: "bulk", addresses: ["10.244.0.1"])
        item["metadata"]?["resourceVersion"] = .string(String(resourceVersion))
        let parts = item.text.components(separatedBy: placeholder)
        precondition(parts.count == 2, "the placeholder name appears once in an item")
        itemHead = Array((parts[0] + "bulk-").utf8)
        itemTail = Array(parts[1].utf8)
        head = Array(#"{"kind":"\#(resource.kind)List","apiVersion":"\#(resource.apiVersion)","metadata":{"resourceVersion":"\#(resourceVersion)"},"items":["#.utf8)
        tail = Array("]}".utf8)
        let itemLength = itemHead.count + 8 + itemTail.count
        let room = bytes - head.count - tail.count
        count = room < itemLength ? 0 : (room + 1) / (itemLength + 1)
        precondition(count < 100_000_000, "numbers have 8 digits")
        let used = head.count + tail.count + count * itemLength + Swift.max(count - 1, 0)
        padding = Swift.max(bytes - used, 0)
        self.bytes = used + padding
    }

    func makeIterator() -> AnyIterator<ByteBuffer> {
        var next = 0
        var headSent = false
        var paddingLeft = padding
        var done = false
        return AnyIterator {
            guard !done else { return nil }
            var chunk: [UInt8] = []
            chunk.reserveCapacity(1 << 20 + 4096)
            if !headSent {
                chunk += head
                headSent = true
            }
            while chunk.count < 1 << 20, next < count {
                if next > 0 { chunk.append(UInt8(ascii: ",")) }
                let number = String(next)
                chunk += itemHead
                chunk += Array(repeating: UInt8(ascii: "0"), count: 8 - number.utf8.count) + Array(number.utf8)
                chunk += itemTail
                next += 1
            }
            if next == count {
                let spaces = Swift.min(paddingLeft, (1 << 20) - Swift.min(chunk.count, 1 << 20))
                chunk += Array(repeating: UInt8(ascii: " "), count: spaces)
                paddingLeft -= spaces
                if paddingLeft == 0 {
                    chunk += tail
                    done = true
                }
            }
            return ByteBuffer(bytes: chunk)
        }
    }
}
