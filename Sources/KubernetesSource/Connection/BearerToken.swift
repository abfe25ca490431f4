import Foundation
import NIOConcurrencyHelpers
import Netlink

/// A bearer token, fixed or read from a file. Projected service-account tokens are rotated on
/// disk (about hourly), so the file is read again whenever its size, time or inode changes.
public final class BearerToken: Sendable {
    private enum Origin {
        case fixed(String)
        case file(String)
    }

    private struct Cached {
        var stamp: [Int]
        var token: String
    }

    private let origin: Origin
    private let cache = NIOLockedValueBox<Cached?>(nil)

    public init(_ token: String) {
        origin = .fixed(token)
    }

    public init(file path: String) {
        origin = .file(path)
    }

    /// The token now.
    public func current() throws -> String {
        switch origin {
        case .fixed(let token):
            return token
        case .file(let path):
            let stamp = try Self.stamp(of: path)
            if let cached = cache.withLockedValue({ $0 }), cached.stamp == stamp { return cached.token }
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ConnectionError("cannot read the token file \(path)")
            }
            let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            cache.withLockedValue { $0 = Cached(stamp: stamp, token: token) }
            return token
        }
    }

    /// Fails, naming the path and errno, when the file cannot be looked at.
    private static func stamp(of path: String) throws -> [Int] {
        let status = try LibC.status(ofFile: path)
        return [status.size, status.modifiedSeconds, status.modifiedNanoseconds, Int(truncatingIfNeeded: status.inode)]
    }
}
