import Foundation
import KubeAPIServer
import Testing

/// The test server, seen by the real kubectl: discovery, lists and watches as kubectl reads
/// them. Skipped where kubectl is not installed.
@Suite(.serialized, .enabled(if: Kubectl.path != nil, "kubectl is not installed"))
struct KubectlTests {
    func seed(_ server: KubeAPIServer) {
        server.put(.services, Objects.service("web", namespace: "shop", clusterIP: "10.96.0.10"))
        server.put(.services, Objects.service("dns", namespace: "kube-system", clusterIP: "10.96.0.53", ports: [53]))
        server.put(.endpointslices, Objects.endpointSlice("web-abc", namespace: "shop", service: "web", addresses: ["10.244.0.5"]))
    }

    @Test func getAsJSONShowsWhatTheServerHolds() async throws {
        try await KubeAPIServer.withServer { server in
            seed(server)
            let output = try await Kubectl(server: server).run(["get", "svc,endpointslices", "-A", "-o", "json"])
            let list = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
            let items = try #require(list["items"] as? [[String: Any]])
            let names = items.compactMap { item -> String? in
                guard let metadata = item["metadata"] as? [String: Any], let namespace = metadata["namespace"] as? String,
                      let name = metadata["name"] as? String else { return nil }
                return "\(item["kind"] as? String ?? "?") \(namespace)/\(name)"
            }
            #expect(Set(names) == ["Service shop/web", "Service kube-system/dns", "EndpointSlice shop/web-abc"])
            let web = items.first { ($0["metadata"] as? [String: Any])?["name"] as? String == "web" }
            #expect((web?["spec"] as? [String: Any])?["clusterIP"] as? String == "10.96.0.10")
        }
    }

    @Test func getNamesPageByPageAndPerNamespace() async throws {
        try await KubeAPIServer.withServer { server in
            seed(server)
            for index in 0..<7 { server.put(.services, Objects.service("s\(index)", clusterIP: "10.96.1.\(index)")) }
            let kubectl = Kubectl(server: server)
            let all = try await kubectl.run(["get", "svc,endpointslices", "-A", "-o", "name", "--chunk-size", "3"])
            let lines = all.split(separator: "\n").map(String.init)
            #expect(lines.count == 10)
            #expect(lines.contains("service/web"))
            #expect(lines.contains("endpointslice.discovery.k8s.io/web-abc"))
            #expect(server.requests.contains { $0.contains("continue=") })

            let shop = try await kubectl.run(["get", "svc", "-n", "shop", "-o", "name"])
            #expect(shop == "service/web\n")
        }
    }

    @Test func watchSeesAChange() async throws {
        try await KubeAPIServer.withServer { server in
            seed(server)
            let watch = try Kubectl(server: server).start(["get", "endpointslices", "-A", "--watch", "-o", "name"])
            defer { watch.stop() }
            try await waitUntil { watch.output.contains("endpointslice.discovery.k8s.io/web-abc") }
            try await waitUntil { server.openWatches > 0 }
            server.put(.endpointslices, Objects.endpointSlice("web-new", namespace: "shop", service: "web", addresses: ["10.244.0.9"]))
            try await waitUntil { watch.output.contains("endpointslice.discovery.k8s.io/web-new") }
        }
    }
}

/// Runs kubectl against the test server with a throwaway home, cache and empty kubeconfig.
struct Kubectl {
    static let path = ["/usr/bin/kubectl", "/usr/local/bin/kubectl"].first { FileManager.default.isExecutableFile(atPath: $0) }

    let server: KubeAPIServer
    let home = FileManager.default.temporaryDirectory.appendingPathComponent("kubectl-\(UUID().uuidString)").path

    init(server: KubeAPIServer) {
        self.server = server
        try? FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: "\(home)/config", contents: Data())
    }

    func process(_ arguments: [String]) -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.path!)
        process.arguments = ["--server", server.url, "--kubeconfig", "\(home)/config", "--cache-dir", "\(home)/cache",
                             "--request-timeout", "10s"] + arguments
        process.environment = ["HOME": home, "PATH": "/usr/bin:/bin"]
        return process
    }

    func start(_ arguments: [String]) throws -> RunningProcess {
        try RunningProcess(process(arguments))
    }

    /// Runs to the end and returns standard output; a failure exit throws. Reads both pipes to
    /// their end on threads of their own (an end-of-file notification can be missed under load);
    /// a kubectl still running after 60 s is killed, which ends the reads.
    func run(_ arguments: [String]) async throws -> String {
        let process = process(arguments)
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let watchdog = DispatchWorkItem { if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 60, execute: watchdog)
        let (output, errors) = await withCheckedContinuation { (done: CheckedContinuation<(Data, Data), Never>) in
            let errors = DataBox()
            let group = DispatchGroup()
            group.enter()
            DispatchQueue.global().async {
                errors.data = err.fileHandleForReading.readDataToEndOfFile()
                group.leave()
            }
            DispatchQueue.global().async {
                let output = out.fileHandleForReading.readDataToEndOfFile()
                group.wait()
                process.waitUntilExit()
                done.resume(returning: (output, errors.data))
            }
        }
        watchdog.cancel()
        guard process.terminationStatus == 0 else {
            throw TimedOut(description: "kubectl \(arguments.joined(separator: " ")) failed: \(String(decoding: errors, as: UTF8.self))")
        }
        return String(decoding: output, as: UTF8.self)
    }
}

/// Data written on one thread and read on another after a `DispatchGroup` wait.
private final class DataBox: @unchecked Sendable {
    var data = Data()
}

/// A child process whose output is collected as it arrives.
final class RunningProcess: @unchecked Sendable {
    let process: Process
    private let lock = NSLock()
    private var stdout = Data()
    private var stderr = Data()
    private var stdoutClosed = false

    init(_ process: Process) throws {
        self.process = process
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        out.fileHandleForReading.readabilityHandler = { [weak self] handle in self?.append(handle.availableData, error: false) }
        err.fileHandleForReading.readabilityHandler = { [weak self] handle in self?.append(handle.availableData, error: true) }
        try process.run()
    }

    private func append(_ data: Data, error: Bool) {
        lock.lock()
        defer { lock.unlock() }
        if error { stderr.append(data) } else if data.isEmpty { stdoutClosed = true } else { stdout.append(data) }
    }

    /// Standard output reached its end.
    var outputComplete: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stdoutClosed
    }

    var output: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: stdout, as: UTF8.self)
    }

    var errors: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: stderr, as: UTF8.self)
    }

    func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        for pipe in [process.standardOutput, process.standardError].compactMap({ $0 as? Pipe }) {
            pipe.fileHandleForReading.readabilityHandler = nil
        }
    }
}
