import Proxy
import Testing
@testable import KubernetesSource

/// Polls a source as the sync loop does, and keeps every batch of changes it hands out and the
/// objects they add up to.
final class ChangeRecorder: @unchecked Sendable {
    private let source: KubernetesSource
    /// Every batch, in order.
    private(set) var batches: [ClusterChanges] = []
    private var services: [ObjectName: Service] = [:]
    private var slices: [ObjectName: EndpointSlice] = [:]
    private var nodes: [String: ClusterNode] = [:]

    init(source: KubernetesSource) {
        self.source = source
    }

    /// The objects so far, nil before the first batch; sorted by name.
    var state: ClusterState? {
        guard !batches.isEmpty else { return nil }
        return ClusterState(services: services.sorted { $0.key < $1.key }.map(\.value),
                            endpointSlices: slices.sorted { $0.key < $1.key }.map(\.value),
                            nodes: nodes.sorted { $0.key < $1.key }.map(\.value))
    }

    /// Objects a batch after the first `after` said were deleted.
    func deletions(after: Int = 0) -> [String] {
        batches.dropFirst(after).flatMap { batch in
            batch.services.filter { $0.value == nil }.map { "service \($0.key)" }
                + batch.endpointSlices.filter { $0.value == nil }.map { "slice \($0.key)" }
        }
    }

    /// The names of Services and EndpointSlices changed by the batches after the first `after`.
    func changed(after: Int) -> (services: Set<ObjectName>, slices: Set<ObjectName>) {
        let later = batches.dropFirst(after)
        return (Set(later.flatMap(\.services.keys)), Set(later.flatMap(\.endpointSlices.keys)))
    }

    /// Takes what the source has, if anything.
    func poll() {
        switch source.poll() {
        case .success(let changes)?:
            #expect(!changes.isEmpty, "a batch of no changes")
            batches.append(changes)
            for (name, service) in changes.services { services[name] = service }
            for (name, slice) in changes.endpointSlices { slices[name] = slice }
            for (name, node) in changes.nodes { nodes[name] = node }
        case .failure(let error)?:
            Issue.record("the source failed: \(error)")
        case nil:
            break
        }
    }

    /// Polls until the objects satisfy `condition` (at most `timeout`); fails the test otherwise.
    @discardableResult
    func waitFor(timeout: Duration = .seconds(60), _ condition: (ClusterState) -> Bool) async throws -> ClusterState {
        try await waitUntil(timeout: timeout) { state.map(condition) ?? false }
        return state ?? ClusterState()
    }

    /// Polls until `condition` holds (at most `timeout`), so that nothing the source hands out meanwhile is missed.
    func waitUntil(timeout: Duration = .seconds(60), _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while true {
            poll()
            if condition() { return }
            guard ContinuousClock.now < deadline else {
                let last = state.map { "\($0.services.count) services, \($0.endpointSlices.count) slices" } ?? "none"
                throw TimedOut(description: "condition not met within \(timeout); last state: \(last)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}
