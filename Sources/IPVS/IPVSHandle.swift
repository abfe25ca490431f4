/// The kernel's IPVS table as plain values. `KernelIPVS` talks to the kernel;
/// `FakeIPVS` keeps a map and answers with the kernel's own errors.
public protocol IPVSHandle: AnyObject {
    func virtualServers() throws -> [VirtualServerStatus]
    func realServers(of key: VirtualServerKey) throws -> [RealServerStatus]
    /// Applies the operations in order, batched. Returns the failures by operation index;
    /// throws only when the outcome is unknown or the kernel could not be reached.
    func apply(_ operations: [IPVSOperation]) throws -> [Int: IPVSError]
    func flush() throws
    func timeouts() throws -> Timeouts
    func setTimeouts(_ timeouts: Timeouts) throws
    func info() throws -> IPVSInfo
}

extension IPVSHandle {
    /// The whole table: every virtual server with its real servers, in kernel order.
    public func table() throws -> [(VirtualServerStatus, [RealServerStatus])] {
        try virtualServers().map { ($0, try realServers(of: $0.server.key)) }
    }

    /// Applies and throws the first failure, for callers that want all-or-error.
    public func applyAll(_ operations: [IPVSOperation]) throws {
        let failures = try apply(operations)
        if let first = failures.keys.min() { throw failures[first]! }
    }
}
