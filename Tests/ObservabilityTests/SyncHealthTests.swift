import Foundation
import Observability
@testable import Proxy
import Testing

@Suite struct SyncHealthTests {
    let t0 = Date(timeIntervalSince1970: 1_700_000_000)

    @Test func healthyWhileNoSyncIsDue() {
        let health = SyncHealth(syncPeriod: .seconds(30))
        #expect(health.isHealthy(at: t0 + 3600))
    }

    @Test func theFirstSyncMayTakeTwoSyncPeriods() {
        var health = SyncHealth(syncPeriod: .seconds(30))
        health.syncDue(at: t0)
        #expect(health.isHealthy(at: t0 + 59))
        #expect(!health.isHealthy(at: t0 + 61))
        health.synced(succeeded: true, at: t0 + 62)
        #expect(health.isHealthy(at: t0 + 62))
    }

    @Test func failedSyncsLetTheLastSuccessAge() {
        var health = SyncHealth(syncPeriod: .seconds(30))
        health.syncDue(at: t0)
        health.synced(succeeded: true, at: t0 + 1)
        health.synced(succeeded: false, at: t0 + 31)
        #expect(health.isHealthy(at: t0 + 40), "one failure is not yet overdue")
        health.synced(succeeded: false, at: t0 + 61)
        #expect(!health.isHealthy(at: t0 + 62))
        health.synced(succeeded: true, at: t0 + 70)
        #expect(health.isHealthy(at: t0 + 70))
    }

    @Test func laterStatesDoNotMoveTheDueTimeBack() {
        var health = SyncHealth(syncPeriod: .seconds(10))
        health.syncDue(at: t0)
        health.syncDue(at: t0 + 15)
        #expect(!health.isHealthy(at: t0 + 21))
    }

    @Test func healthzAnswersAsKubeProxy() throws {
        let clock = TestClock(t0)
        let monitor = HealthMonitor(syncPeriod: .seconds(30), now: { clock.now })
        #expect(monitor.healthz().status == 200)
        monitor.see(ClusterState())
        clock.now = t0 + 61
        let overdue = monitor.healthz()
        #expect(overdue.status == 503)
        #expect(overdue.contentType == "application/json")
        let body = try #require(try JSONSerialization.jsonObject(with: Data(overdue.body)) as? [String: Any])
        #expect(body["lastUpdated"] as? String == "")
        #expect(body["currentTime"] as? String == "2023-11-14T22:14:21.000Z")
        #expect(body["nodeEligible"] as? Bool == true)
        #expect(monitor.livez().status == 503)

        monitor.syncFinished(SyncRecord(started: .now, duration: .milliseconds(3), result: .success(SyncReport())))
        let healthy = monitor.healthz()
        #expect(healthy.status == 200)
        let updated = try #require(try JSONSerialization.jsonObject(with: Data(healthy.body)) as? [String: Any])
        #expect(updated["lastUpdated"] as? String == "2023-11-14T22:14:21.000Z")
    }

    static let ready = ClusterNode(name: "node-a")
    static let deleting = ClusterNode(name: "node-a", isBeingDeleted: true)
    static let scaledDown = ClusterNode(name: "node-a", taints: [.init(key: "ToBeDeletedByClusterAutoscaler", effect: "NoSchedule")])

    @Test(arguments: [deleting, scaledDown])
    func aNodeGoingAwayFailsHealthzButNotLivez(_ node: ClusterNode) throws {
        let monitor = HealthMonitor(syncPeriod: .seconds(30), nodeName: "node-a", now: { t0 })
        monitor.see(ClusterState(nodes: [ClusterNode(name: "node-b", isBeingDeleted: true), Self.ready]))
        #expect(monitor.healthz().status == 200)

        monitor.see(ClusterState(nodes: [node]))
        let healthz = monitor.healthz()
        #expect(healthz.status == 503)
        let body = try #require(try JSONSerialization.jsonObject(with: Data(healthz.body)) as? [String: Any])
        #expect(body["nodeEligible"] as? Bool == false)
        let livez = monitor.livez()
        #expect(livez.status == 200)
        let live = try #require(try JSONSerialization.jsonObject(with: Data(livez.body)) as? [String: Any])
        #expect(live["nodeEligible"] == nil)
        #expect(monitor.isSyncHealthy)

        monitor.see(ClusterState(nodes: [Self.ready]))
        #expect(monitor.healthz().status == 200)
    }

    @Test func withoutItsNodeObjectTheNodeKeepsTheLastVerdict() {
        let monitor = HealthMonitor(syncPeriod: .seconds(30), nodeName: "node-a", now: { t0 })
        monitor.see(ClusterState())
        #expect(monitor.isNodeEligible)
        monitor.see(ClusterState(nodes: [Self.deleting]))
        monitor.see(ClusterState())
        #expect(!monitor.isNodeEligible)
        #expect(monitor.healthz().status == 503)
    }

    @Test func withoutANodeNameNodesAreIgnored() {
        let monitor = HealthMonitor(syncPeriod: .seconds(30), now: { t0 })
        monitor.see(ClusterState(nodes: [Self.deleting]))
        #expect(monitor.healthz().status == 200)
    }

    @Test func bindAddresses() {
        #expect(BindAddress("0.0.0.0:10256") == BindAddress(host: "0.0.0.0", port: 10256))
        #expect(BindAddress("[::]:10249") == BindAddress(host: "::", port: 10249))
        #expect(BindAddress("[::1]:10249")?.description == "[::1]:10249")
        #expect(BindAddress("10256") == nil)
        #expect(BindAddress("localhost:10256") == nil)
        #expect(BindAddress("127.0.0.1:70000") == nil)
    }
}

/// A wall clock a test sets by hand.
final class TestClock: @unchecked Sendable {
    private let lock = NSLock()
    private var current: Date

    init(_ start: Date) {
        current = start
    }

    var now: Date {
        get { lock.withLock { current } }
        set { lock.withLock { current = newValue } }
    }
}

extension HealthMonitor {
    /// The source's answer when it holds exactly `state`.
    func see(_ state: ClusterState) {
        sourceChanged(ClusterChanges(adding: state), objects: ClusterObjects(state))
    }
}
