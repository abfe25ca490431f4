import ArgumentParser
import Foundation
import HostNetwork
import IPVS
import Netlink
import Observability
import Proxy

/// `--config`: kube-proxy's configuration file under the flags. A flag given on the command line
/// wins over the file, as with kube-proxy; what neither sets takes kipvs' default.
extension NodeOptions {
    /// The file named by `--config`; empty without one.
    func configurationFile() throws -> KubeProxyConfiguration {
        guard let config else { return KubeProxyConfiguration() }
        let text: String
        do {
            text = try String(contentsOfFile: config, encoding: .utf8)
        } catch {
            throw ValidationError("--config: cannot read \(config): \(error.localizedDescription)")
        }
        let file: KubeProxyConfiguration
        do {
            file = try KubeProxyConfiguration.parse(text)
        } catch {
            throw ValidationError("--config: \(error)")
        }
        for (path, value) in [("healthzBindAddress", file.healthzBindAddress), ("metricsBindAddress", file.metricsBindAddress)] {
            if let value, BindAddress(value) == nil {
                throw ValidationError("--config: \(path): expected HOST:PORT, got \"\(value)\"")
            }
        }
        return file
    }

    /// The node flags given on the command line, in the file's shape.
    func flagConfiguration() throws -> KubeProxyConfiguration {
        var flags = KubeProxyConfiguration()
        flags.hostnameOverride = hostnameOverride.flatMap { $0.isEmpty ? nil : $0 }
        if let ipvsScheduler {
            guard let scheduler = IPVSScheduler(rawValue: ipvsScheduler) else {
                throw ValidationError("--ipvs-scheduler: unknown scheduler \(ipvsScheduler)")
            }
            flags.scheduler = scheduler
        }
        if let nodeportAddresses {
            switch KubeProxyConfiguration.parseNodePortAddresses(nodeportAddresses.split(separator: ",").map(String.init)) {
            case .success(let value): flags.nodePortAddresses = value
            case .failure(let error): throw ValidationError("--nodeport-addresses: \(error.message)")
            }
        }
        flags.excludeCIDRs = try ipvsExcludeCidrs.map { try cidrs($0, flag: "--ipvs-exclude-cidrs") }
        flags.clusterCIDRs = try clusterCidr.map { try cidrs($0, flag: "--cluster-cidr") }
        if let detectLocalMode {
            guard let mode = KubeProxyConfiguration.LocalMode(rawValue: detectLocalMode) else {
                throw ValidationError("--detect-local-mode: \(detectLocalMode) is not one of "
                    + KubeProxyConfiguration.LocalMode.allCases.map(\.rawValue).joined(separator: ", "))
            }
            flags.detectLocalMode = mode
        }
        flags.interfaceNamePrefixes = podInterfaceNamePrefix.map {
            $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        flags.bridgeInterface = podBridgeInterface
        flags.masqueradeAll = masqueradeAll
        return flags
    }

    /// The flags over the file.
    func configuration() throws -> KubeProxyConfiguration {
        try flagConfiguration().overriding(configurationFile())
    }

    /// NodePort addresses as CIDRs; `primary` becomes the addresses of the interfaces that hold the
    /// node's default routes (IPv4 and IPv6 each: the one with the lowest metric), read once at start.
    func nodePortCIDRs(_ config: KubeProxyConfiguration) throws -> [CIDR] {
        switch config.nodePortAddresses {
        case nil: return []
        case .cidrs(let cidrs): return cidrs
        case .primary: return try primaryAddresses().map { CIDR(address: $0, prefixLength: $0.bytes.count * 8) }
        }
    }

    private func primaryAddresses() throws -> [IPAddress] {
        func read(_ path: String) throws -> String {
            do {
                return String(decoding: try LibC.readFile(path, limit: 64 << 20), as: UTF8.self)
            } catch where error.errno == .noSuchFileOrDirectory {
                return ""  // a kernel without IPv6 has no ipv6_route: no IPv6 default route, not an error
            }
        }
        let routes: [(String?, IPAddress.Family)] = [
            (DefaultRoutes.ipv4Interface(procNetRoute: try read("/proc/net/route")), .inet),
            (DefaultRoutes.ipv6Interface(procNetIPv6Route: try read("/proc/net/ipv6_route")), .inet6),
        ]
        let network = try HostNetwork()
        let all = try network.addresses()
        var primary: [IPAddress] = []
        for case let (name?, family) in routes {
            guard let index = try network.interfaceIndex(named: name) else { continue }
            primary += all.filter { $0.interfaceIndex == index && $0.address.family == family && !$0.address.isIPv6LinkLocal }
                .map(\.address)
        }
        guard !primary.isEmpty else {
            throw ValidationFailure("nodePortAddresses primary: no default route with an address on this node")
        }
        return primary
    }
}

extension RunCommand {
    /// The node's configuration with `run`'s own flags over it.
    func configuration() throws -> KubeProxyConfiguration {
        var flags = KubeProxyConfiguration()
        flags.syncPeriod = ipvsSyncPeriod
        flags.minSyncPeriod = ipvsMinSyncPeriod
        flags.tcpTimeout = ipvsTcpTimeout
        flags.tcpFinTimeout = ipvsTcpfinTimeout
        flags.udpTimeout = ipvsUdpTimeout
        flags.healthzBindAddress = healthzBindAddress
        flags.metricsBindAddress = metricsBindAddress
        flags.kubeconfig = kubernetesOptions.kubeconfig
        return flags.overriding(try nodeOptions.configuration())
    }
}
