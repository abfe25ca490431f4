import ArgumentParser
import Foundation
import HostNetwork
import IPVS
import KubernetesSource
import Logging
import Metrics
import NFTables
import Netlink
import Observability
import Prometheus
import Proxy
import ServiceLifecycle

/// Flags shared by `run`, `plan` and `cleanup`, named as kube-proxy's where the meaning is the same.
struct NodeOptions: ParsableArguments {
    @Option(help: "kube-proxy's configuration file (KubeProxyConfiguration v1alpha1, YAML or JSON); flags given here win over it.")
    var config: String?

    @Option(help: "The node's name, for the Local traffic policies (default: $NODE_NAME, else the host name).")
    var hostnameOverride: String?

    @Option(help: "Comma-separated CIDRs whose node addresses NodePorts use, or primary: the addresses of the default route's interface (default: every node address).")
    var nodeportAddresses: String?

    @Option(help: "Default IPVS scheduler (default: rr); a Service may pick another with the kipvs.io/scheduler annotation.")
    var ipvsScheduler: String?

    @Option(help: "Comma-separated CIDRs whose virtual servers kipvs never deletes.")
    var ipvsExcludeCidrs: String?

    @Option(help: "The cluster's NodePort range: virtual servers on node addresses in it are kipvs'.")
    var serviceNodePortRange = "30000-32767"

    @Option(help: "The dummy interface that holds the virtual IPs.")
    var interfaceName = "kipvs0"

    @Option(help: "Comma-separated CIDRs of the cluster's pods: traffic from elsewhere to cluster IPs is masqueraded.")
    var clusterCidr: String?

    @Option(help: "How pod traffic is told apart: ClusterCIDR, InterfaceNamePrefix or BridgeInterface (default ClusterCIDR when --cluster-cidr is set).")
    var detectLocalMode: String?

    @Option(help: "With --detect-local-mode InterfaceNamePrefix: comma-separated prefixes of the pods' interfaces.")
    var podInterfaceNamePrefix: String?

    @Option(help: "With --detect-local-mode BridgeInterface: the bridge the pods are on.")
    var podBridgeInterface: String?

    @Flag(inversion: .prefixedNo, help: "Masquerade all traffic to cluster IPs, from pods too (default: off).")
    var masqueradeAll: Bool?

    func validate() throws {
        guard NodeConfig.parsePortRange(serviceNodePortRange) != nil else {
            throw ValidationError("--service-node-port-range: expected LOW-HIGH, got \(serviceNodePortRange)")
        }
        let config = try configuration()
        _ = try localTraffic(config)
        if let problem = node(config).problems.first { throw ValidationError(problem) }
    }

    /// kube-proxy's `--detect-local-mode` (`detectLocalMode`), from the settings that go with it.
    func localTraffic(_ config: KubeProxyConfiguration) throws -> LocalTrafficDetector {
        let clusterCIDRs = config.clusterCIDRs ?? []
        switch config.detectLocalMode ?? (clusterCIDRs.isEmpty ? nil : .clusterCIDR) {
        case nil:
            return .none
        case .clusterCIDR:
            guard !clusterCIDRs.isEmpty else {
                throw ValidationError("--detect-local-mode ClusterCIDR needs --cluster-cidr (clusterCIDR)")
            }
            return .clusterCIDR(clusterCIDRs)
        case .interfaceNamePrefix:
            guard let prefixes = config.interfaceNamePrefixes, !prefixes.isEmpty else {
                throw ValidationError("--detect-local-mode InterfaceNamePrefix needs --pod-interface-name-prefix (detectLocal.interfaceNamePrefix)")
            }
            return .interfaceNamePrefix(prefixes)
        case .bridgeInterface:
            guard let bridge = config.bridgeInterface, !bridge.isEmpty, bridge.utf8.count <= 15 else {
                throw ValidationError("--detect-local-mode BridgeInterface needs --pod-bridge-interface (detectLocal.bridgeInterface), 1-15 characters")
            }
            return .bridgeInterface(bridge)
        }
    }

    func packetFilterConfig(_ config: KubeProxyConfiguration) throws -> PacketFilterConfig {
        PacketFilterConfig(localTraffic: try localTraffic(config), masqueradeAll: config.masqueradeAll ?? false)
    }

    func cidrs(_ text: String, flag: String) throws -> [CIDR] {
        if text.isEmpty { return [] }
        return try text.split(separator: ",").map { part in
            guard let cidr = CIDR(String(part).trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("\(flag): not a CIDR: \(part)")
            }
            return cidr
        }
    }

    func nodeName(_ config: KubeProxyConfiguration) -> String {
        if let hostnameOverride = config.hostnameOverride, !hostnameOverride.isEmpty { return hostnameOverride.lowercased() }
        if let env = ProcessInfo.processInfo.environment["NODE_NAME"], !env.isEmpty { return env.lowercased() }
        return ProcessInfo.processInfo.hostName.lowercased()
    }

    func node(_ config: KubeProxyConfiguration) -> NodeConfig {
        NodeConfig(nodeName: nodeName(config), scheduler: config.scheduler ?? KubeProxyConfiguration.defaultScheduler,
                   nodePortRange: NodeConfig.parsePortRange(serviceNodePortRange) ?? NodeConfig.defaultNodePortRange,
                   excludeCIDRs: config.excludeCIDRs ?? [], dummyInterface: interfaceName)
    }

    func agent(_ config: KubeProxyConfiguration, gracePeriod: Duration = GracefulTermination.defaultGracePeriod,
               logger: Logger? = nil) throws -> Agent {
        let packetFilter: PacketFilterReconciler?
        do {
            packetFilter = PacketFilterReconciler(handle: try KernelNFTables(), config: try packetFilterConfig(config))
        } catch let error as NFTablesError where error.meansNoPacketFilter {
            // IPVS works without it; the operator hears why the packet path is missing.
            packetFilter = nil
            logger?.error("this kernel has no nf_tables netlink: masquerading, hairpin, the VIP filter and source ranges are off",
                          metadata: ["error": "\(error)"])
        }
        let conntrack: KernelConntrack?
        do {
            conntrack = try KernelConntrack()
        } catch let error as NetlinkError where error.errno == .protocolNotSupported {
            conntrack = nil
            logger?.error("this kernel has no nfnetlink: stale UDP flows are left to expire", metadata: ["error": "\(error)"])
        }
        return Agent(ipvs: try openIPVS(), network: try HostNetwork(), node: node(config),
                     nodePortCIDRs: try nodePortCIDRs(config),
                     packetFilter: packetFilter, conntrack: conntrack, gracePeriod: gracePeriod)
    }
}

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run the service proxy: keep IPVS equal to the Services and their ready endpoints.")

    @OptionGroup var sourceOptions: SourceOptions
    @OptionGroup var kubernetesOptions: KubernetesOptions
    @OptionGroup var nodeOptions: NodeOptions

    @Flag(help: "Sync once from a file source and exit; the exit status says whether the sync succeeded.") var once = false

    @Option(help: "Shortest time between two syncs; changes within it coalesce (e.g. 1s, 500ms; default 1s).", transform: parseDuration)
    var ipvsMinSyncPeriod: Duration?

    @Option(help: "Longest time between two syncs: a full resync repairs changes made behind kipvs' back (default 30s).", transform: parseDuration)
    var ipvsSyncPeriod: Duration?

    @Option(help: "IPVS idle timeout of TCP connections, set at start; 0 leaves the kernel's value (the default).", transform: parseDuration)
    var ipvsTcpTimeout: Duration?

    @Option(help: "IPVS timeout of TCP connections after a FIN, set at start; 0 leaves the kernel's value (the default).", transform: parseDuration)
    var ipvsTcpfinTimeout: Duration?

    @Option(help: "IPVS timeout of UDP flows, set at start; 0 leaves the kernel's value (the default).", transform: parseDuration)
    var ipvsUdpTimeout: Duration?

    @Option(help: "How long a removed TCP real server may drain at weight 0 before it is deleted.", transform: parseDuration)
    var terminationGracePeriod: Duration = .seconds(900)

    @Option(help: "Where /healthz and /livez are served, HOST:PORT (default 0.0.0.0:10256); empty turns them off.")
    var healthzBindAddress: String?

    @Option(help: "Where /metrics is served, HOST:PORT (default 127.0.0.1:10249); empty turns it off.")
    var metricsBindAddress: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Option(name: .customLong("v"), help: "Verbosity as kube-proxy's --v: 0-1 info, 2-3 debug, 4+ trace.")
    var verbosity: Int?

    func validate() throws {
        let config = try configuration()
        if once, try sourceOptions.choice(kubeconfigGiven: config.kubeconfig != nil) == .kubernetes {
            throw ValidationError("--once reads a file source: use --source file:PATH")
        }
        _ = try bindAddress(config.healthzBindAddress, default: KubeProxyConfiguration.defaultHealthzBindAddress,
                            flag: "--healthz-bind-address")
        _ = try bindAddress(config.metricsBindAddress, default: KubeProxyConfiguration.defaultMetricsBindAddress,
                            flag: "--metrics-bind-address")
    }

    func bindAddress(_ value: String?, default defaultValue: String, flag: String) throws -> BindAddress? {
        let text = value ?? defaultValue
        if text.isEmpty { return nil }
        guard let address = BindAddress(text) else { throw ValidationError("\(flag): expected HOST:PORT, got \(text)") }
        return address
    }

    func run() async throws {
        let level: Logger.Level = verbosity.map { $0 >= 4 ? .trace : $0 >= 2 ? .debug : .info } ?? logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusExport.factory(registry: registry))
        let logger = Logger(label: "kipvs")

        let config = try configuration()
        for note in config.ignored { logger.notice("configuration file field ignored", metadata: ["field": "\(note)"]) }
        let agent = try nodeOptions.agent(config, gracePeriod: terminationGracePeriod, logger: logger)
        // The kernel leaves a timeout of 0 as it is, so one request sets only those given.
        if config.ipvsTimeouts != Timeouts(tcp: 0, tcpFin: 0, udp: 0) {
            do {
                try agent.ipvs.setTimeouts(config.ipvsTimeouts)
            } catch {
                throw ValidationFailure("setting the IPVS timeouts \(config.ipvsTimeouts): \(error)")
            }
            let set = config.ipvsTimeouts
            logger.info("IPVS timeouts set", metadata: ["tcp": "\(set.tcp)", "tcpFin": "\(set.tcpFin)", "udp": "\(set.udp)"])
        }
        let changed = try KernelSettings.apply(kernelRelease: LibC.kernelRelease())
        if !changed.isEmpty { logger.info("kernel settings applied", metadata: ["sysctls": "\(changed)"]) }
        for warning in KernelSettings.nodeWarnings() { logger.warning("\(warning)") }

        var kubernetes: KubernetesSource?
        let source: any ClusterSource
        switch try sourceOptions.choice(kubeconfigGiven: config.kubeconfig != nil) {
        case .file(let path):
            source = FileSource(path: path)
        case .kubernetes:
            var connection = kubernetesOptions
            connection.kubeconfig = config.kubeconfig
            let api = try KubernetesSource(connection: try connection.connection(), nodeName: agent.node.nodeName,
                                           logger: logger)
            kubernetes = api
            source = api
        }
        let syncPeriod = config.syncPeriod ?? KubeProxyConfiguration.defaultSyncPeriod
        let minSyncPeriod = config.minSyncPeriod ?? KubeProxyConfiguration.defaultMinSyncPeriod
        // As kube-proxy's validation of its IPVS configuration.
        guard syncPeriod > .zero, minSyncPeriod >= .zero, syncPeriod >= minSyncPeriod else {
            throw ValidationError("--ipvs-sync-period (\(syncPeriod)) must be positive and no shorter than --ipvs-min-sync-period (\(minSyncPeriod))")
        }
        let loop = SyncLoop(agent: agent, source: source, minSyncPeriod: minSyncPeriod, syncPeriod: syncPeriod, logger: logger)
        if once {
            guard loop.runOnce() else { throw ExitCode.failure }
            return
        }
        let health = HealthMonitor(syncPeriod: syncPeriod, nodeName: agent.node.nodeName)
        let healthChecks = healthCheckNodePorts(agent: agent, health: health, logger: logger)
        loop.observers = [health, SyncMetrics(), healthChecks.observer]

        // In dependency order: the group stops them in reverse on SIGTERM, the kernel state stays.
        var services: [any ServiceLifecycle.Service] = []
        if let kubernetes { services.append(CancelledOnShutdown(kubernetes)) }
        services.append(SyncLoopService(loop: loop))
        services.append(healthChecks.service)
        if let address = try bindAddress(config.healthzBindAddress, default: KubeProxyConfiguration.defaultHealthzBindAddress,
                                         flag: "--healthz-bind-address") {
            services.append(CancelledOnShutdown(HTTPEndpointServer(
                address: address, routes: ["/healthz": health.healthz, "/livez": health.livez], logger: logger)))
        }
        if let address = try bindAddress(config.metricsBindAddress, default: KubeProxyConfiguration.defaultMetricsBindAddress,
                                         flag: "--metrics-bind-address") {
            services.append(CancelledOnShutdown(HTTPEndpointServer(
                address: address, routes: ["/metrics": { PrometheusExport.response(registry) }], logger: logger)))
        }
        logger.info("starting", metadata: ["node": "\(agent.node.nodeName)", "source": "\(source.name)"])
        let group = ServiceGroup(configuration: .init(services: services.map { .init(service: $0) },
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan", abstract: "Show what a sync would change, in ipvsadm notation, without changing anything.")

    @OptionGroup var sourceOptions: SourceOptions
    @OptionGroup var nodeOptions: NodeOptions

    func run() throws {
        let cluster: ClusterState
        do {
            cluster = try ManifestLoader.load(paths: [try sourceOptions.path()])
        } catch let error as LoadError {
            throw ValidationFailure("plan: \(error)")
        }
        let agent = try nodeOptions.agent(try nodeOptions.configuration())
        let result = try agent.plan(cluster)
        for warning in result.warnings { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
        for address in result.bind { print("# bind \(address) to \(agent.node.dummyInterface)") }
        for address in result.unbind { print("# unbind \(address) from \(agent.node.dummyInterface)") }
        if !result.ipvs.isEmpty { print(result.ipvs.description) }
        if let packetFilter = result.packetFilter, !packetFilter.isEmpty { print(packetFilter.description) }
        if result.packetFilter == nil {
            FileHandle.standardError.write(Data("note: no packet filter table is planned: this kernel cannot hold one\n".utf8))
        }
        if result.ipvs.isEmpty && (result.packetFilter?.isEmpty ?? true) && result.bind.isEmpty && result.unbind.isEmpty {
            print("# nothing to change")
        }
    }
}

struct CleanupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cleanup", abstract: "Remove every virtual server kipvs owns and its dummy interface; nothing else.")

    @OptionGroup var nodeOptions: NodeOptions

    func run() throws {
        let summary = try nodeOptions.agent(try nodeOptions.configuration()).cleanup()
        print("removed \(summary.virtualServersDeleted) virtual servers and \(nodeOptions.interfaceName)")
        if !summary.failures.isEmpty {
            throw ValidationFailure(summary.failures.map { "cleanup: \($0)" }.joined(separator: "\n"))
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// `1s`, `500ms`, `2m`, `1h`, or a number of seconds.
func parseDuration(_ text: String) throws -> Duration {
    let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
    let (number, scale) = units.first { text.hasSuffix($0.0) }.map { (text.dropLast($0.0.count), $0.1) } ?? (text[...], 1)
    guard let value = Double(number), value >= 0, value.isFinite else {
        throw ValidationError("not a duration: \(text) (e.g. 1s, 500ms, 2m)")
    }
    let milliseconds = value * scale * 1000
    // Beyond a year is a typo, and beyond Int64 milliseconds would trap.
    guard milliseconds <= maximumDurationMilliseconds else { throw ValidationError("duration \(text) is longer than a year") }
    return .milliseconds(Int64(milliseconds))
}

private let maximumDurationMilliseconds = 365.0 * 24 * 3600 * 1000
