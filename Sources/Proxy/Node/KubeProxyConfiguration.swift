import Foundation
import IPVS
import Yams

/// What kipvs takes from kube-proxy's configuration file (`kubeproxy.config.k8s.io/v1alpha1`
/// `KubeProxyConfiguration`, YAML or JSON), and from the flags of the same meaning. A nil value
/// is one nobody set: the default applies. Flags and file are both read into this shape, and
/// `overriding(_:)` puts the flags over the file, as kube-proxy does.
public struct KubeProxyConfiguration: Hashable, Sendable {
    /// `nodePortAddresses`: CIDRs, or kube-proxy's keyword `primary`.
    public enum NodePortAddresses: Hashable, Sendable {
        case cidrs([CIDR])
        /// The node's primary addresses; the caller decides what they are.
        case primary
    }

    /// `detectLocalMode`, less kube-proxy's `NodeCIDR`, which needs the Node object's podCIDRs.
    public enum LocalMode: String, Hashable, Sendable, CaseIterable {
        case clusterCIDR = "ClusterCIDR"
        case interfaceNamePrefix = "InterfaceNamePrefix"
        case bridgeInterface = "BridgeInterface"
    }

    public var hostnameOverride: String?
    /// `clientConnection.kubeconfig`.
    public var kubeconfig: String?
    public var scheduler: IPVSScheduler?
    public var syncPeriod: Duration?
    public var minSyncPeriod: Duration?
    public var excludeCIDRs: [CIDR]?
    public var tcpTimeout: Duration?
    public var tcpFinTimeout: Duration?
    public var udpTimeout: Duration?
    public var nodePortAddresses: NodePortAddresses?
    public var clusterCIDRs: [CIDR]?
    public var detectLocalMode: LocalMode?
    public var interfaceNamePrefixes: [String]?
    public var bridgeInterface: String?
    public var masqueradeAll: Bool?
    /// HOST:PORT; empty turns the endpoint off.
    public var healthzBindAddress: String?
    public var metricsBindAddress: String?
    /// Fields the file sets that kipvs accepts and does not apply, each with why.
    public var ignored: [String] = []

    public static let defaultScheduler = IPVSScheduler.roundRobin
    public static let defaultSyncPeriod = Duration.seconds(30)
    public static let defaultMinSyncPeriod = Duration.seconds(1)
    public static let defaultHealthzBindAddress = "0.0.0.0:10256"
    public static let defaultMetricsBindAddress = "127.0.0.1:10249"
    static let healthzPort: UInt16 = 10256
    static let metricsPort: UInt16 = 10249

    public init() {}

    /// Every value set here wins; the others come from `base`. Fields ignored in either are listed.
    public func overriding(_ base: KubeProxyConfiguration) -> KubeProxyConfiguration {
        var out = KubeProxyConfiguration()
        out.hostnameOverride = hostnameOverride ?? base.hostnameOverride
        out.kubeconfig = kubeconfig ?? base.kubeconfig
        out.scheduler = scheduler ?? base.scheduler
        out.syncPeriod = syncPeriod ?? base.syncPeriod
        out.minSyncPeriod = minSyncPeriod ?? base.minSyncPeriod
        out.excludeCIDRs = excludeCIDRs ?? base.excludeCIDRs
        out.tcpTimeout = tcpTimeout ?? base.tcpTimeout
        out.tcpFinTimeout = tcpFinTimeout ?? base.tcpFinTimeout
        out.udpTimeout = udpTimeout ?? base.udpTimeout
        out.nodePortAddresses = nodePortAddresses ?? base.nodePortAddresses
        out.clusterCIDRs = clusterCIDRs ?? base.clusterCIDRs
        out.detectLocalMode = detectLocalMode ?? base.detectLocalMode
        out.interfaceNamePrefixes = interfaceNamePrefixes ?? base.interfaceNamePrefixes
        out.bridgeInterface = bridgeInterface ?? base.bridgeInterface
        out.masqueradeAll = masqueradeAll ?? base.masqueradeAll
        out.healthzBindAddress = healthzBindAddress ?? base.healthzBindAddress
        out.metricsBindAddress = metricsBindAddress ?? base.metricsBindAddress
        out.ignored = base.ignored + ignored
        return out
    }

    /// The IPVS connection timeouts to set at start, in whole seconds; 0 leaves the kernel's value.
    public var ipvsTimeouts: Timeouts {
        func seconds(_ duration: Duration?) -> UInt32 { UInt32(clamping: duration?.components.seconds ?? 0) }
        return Timeouts(tcp: seconds(tcpTimeout), tcpFin: seconds(tcpFinTimeout), udp: seconds(udpTimeout))
    }
}

// MARK: - Values as kube-proxy writes them

extension KubeProxyConfiguration {
    /// Go's `time.ParseDuration`, as `metav1.Duration` reads it: `30s`, `1h0m0s`, `1.5m`, `250ms`, `0`.
    /// Negative durations are refused: no field here means anything by one.
    public static func parseGoDuration(_ text: String) -> Duration? {
        var rest = Substring(text)
        if rest.hasPrefix("+") { rest = rest.dropFirst() }
        if rest == "0" { return .zero }
        guard !rest.isEmpty else { return nil }
        let units: [(String, Double)] = [("ns", 1e-9), ("us", 1e-6), ("µs", 1e-6), ("μs", 1e-6), ("ms", 1e-3),
                                         ("s", 1), ("m", 60), ("h", 3600)]
        var seconds = 0.0
        while !rest.isEmpty {
            let number = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
            guard !number.isEmpty, number != ".", number.filter({ $0 == "." }).count <= 1, let value = Double(number)
            else { return nil }
            rest = rest.dropFirst(number.count)
            // The longest unit that matches: "ms" before "m".
            guard let unit = units.filter({ rest.hasPrefix($0.0) }).max(by: { $0.0.count < $1.0.count }) else { return nil }
            rest = rest.dropFirst(unit.0.count)
            seconds += value * unit.1
        }
        // Go's limit is about 290 years; a year is already beyond any sensible period here.
        guard seconds.isFinite, seconds <= 365 * 24 * 3600 else { return nil }
        return .nanoseconds(Int64((seconds * 1e9).rounded()))
    }

    /// `nodePortAddresses` (file) or `--nodeport-addresses` (flag, comma-separated): CIDRs, or `primary` alone.
    public static func parseNodePortAddresses(_ items: [String]) -> Result<NodePortAddresses?, ConfigurationError> {
        let items = items.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if items.isEmpty { return .success(nil) }
        if items.contains("primary") {
            guard items.count == 1 else {
                return .failure(ConfigurationError(path: "", message: "primary cannot be combined with CIDRs"))
            }
            return .success(.primary)
        }
        var cidrs: [CIDR] = []
        for item in items {
            guard let cidr = CIDR(item) else { return .failure(ConfigurationError(path: "", message: "not a CIDR: \(item)")) }
            cidrs.append(cidr)
        }
        return .success(.cidrs(cidrs))
    }

    /// kube-proxy's `AppendPortIfNeeded`: a bare address in the file gets the default port.
    static func withDefaultPort(_ text: String, _ port: UInt16) -> String {
        if let address = IPAddress(text) { return Endpoint.format(address, port) }
        if text.hasPrefix("["), text.hasSuffix("]"), let address = IPAddress(String(text.dropFirst().dropLast())) {
            return Endpoint.format(address, port)
        }
        return text
    }
}

/// A field of the configuration file that kipvs cannot use, named by its path.
public struct ConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// `ipvs.syncPeriod`; empty for the whole file.
    public var path: String
    public var message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

// MARK: - Reading the file

extension KubeProxyConfiguration {
    public static let apiVersion = "kubeproxy.config.k8s.io/v1alpha1"
    public static let kind = "KubeProxyConfiguration"

    /// Reads a configuration file strictly, as kube-proxy does: an unknown or repeated field, a
    /// value of the wrong type and a value kipvs cannot honour are errors naming the field.
    /// kube-proxy's defaulting of zero values applies: `syncPeriod: 0s` and an empty
    /// `healthzBindAddress` mean the default, as in the files kubeadm writes.
    public static func parse(_ text: String) throws(ConfigurationError) -> KubeProxyConfiguration {
        let root: Node
        do {
            let parser = try Parser(yaml: text)
            guard let first = try parser.nextRoot() else { throw ConfigurationError(path: "", message: "the file is empty") }
            if try parser.nextRoot() != nil {
                throw ConfigurationError(path: "", message: "expected one KubeProxyConfiguration, found several documents")
            }
            root = first
        } catch let error as ConfigurationError {
            throw error
        } catch YamlError.duplicatedKeysInMapping(let keys, _) {
            throw ConfigurationError(path: keys.sorted().joined(separator: ", "), message: "repeated field")
        } catch {
            throw ConfigurationError(path: "", message: "not YAML or JSON: \(error)")
        }
        var reader = ConfigurationReader()
        return try reader.read(root)
    }
}

/// kube-proxy's v1alpha1 schema: every field it knows, so that the rest are errors.
private indirect enum Schema {
    /// A leaf whose value kipvs reads or ignores.
    case value
    /// Any subtree (`featureGates`, `logging`): kube-proxy's own business.
    case opaque
    case object([String: Schema])

    static let file: Schema = .object([
        "apiVersion": .value, "kind": .value,
        "featureGates": .opaque,
        "clientConnection": .object(["kubeconfig": .value, "acceptContentTypes": .value, "contentType": .value,
                                     "qps": .value, "burst": .value]),
        "logging": .opaque,
        "hostnameOverride": .value, "bindAddress": .value, "healthzBindAddress": .value, "metricsBindAddress": .value,
        "bindAddressHardFail": .value, "enableProfiling": .value, "showHiddenMetricsForVersion": .value,
        "mode": .value,
        "iptables": .object(["masqueradeBit": .value, "masqueradeAll": .value, "localhostNodePorts": .value,
                             "snatNodeInternalIP": .value, "syncPeriod": .value, "minSyncPeriod": .value]),
        "ipvs": .object(["syncPeriod": .value, "minSyncPeriod": .value, "scheduler": .value, "excludeCIDRs": .value,
                         "strictARP": .value, "tcpTimeout": .value, "tcpFinTimeout": .value, "udpTimeout": .value]),
        "nftables": .object(["masqueradeBit": .value, "masqueradeAll": .value, "syncPeriod": .value,
                             "minSyncPeriod": .value, "acceleratedInterfaceExpression": .value]),
        "winkernel": .object(["networkName": .value, "sourceVip": .value, "enableDSR": .value,
                              "rootHnsEndpointName": .value, "forwardHealthCheckVip": .value]),
        "detectLocalMode": .value,
        "detectLocal": .object(["bridgeInterface": .value, "interfaceNamePrefix": .value]),
        "clusterCIDR": .value,
        "nodePortAddresses": .value,
        "oomScoreAdj": .value,
        "conntrack": .object(["maxPerCore": .value, "min": .value, "tcpEstablishedTimeout": .value,
                              "tcpCloseWaitTimeout": .value, "tcpBeLiberal": .value, "udpTimeout": .value,
                              "udpStreamTimeout": .value]),
        "configSyncPeriod": .value,
        "portRange": .value,
        "windowsRunAsService": .value,
    ])
}

private struct ConfigurationReader {
    /// Leaves by dotted path; null leaves are left out, as kube-proxy reads them as unset.
    private var leaves: [String: Node] = [:]

    mutating func read(_ root: Node) throws(ConfigurationError) -> KubeProxyConfiguration {
        try collect(root, schema: .file, path: "")
        guard case .mapping = root else { throw ConfigurationError(path: "", message: "expected an object") }
        for (path, expected) in [("apiVersion", KubeProxyConfiguration.apiVersion), ("kind", KubeProxyConfiguration.kind)] {
            guard let value = try string(path) else { throw ConfigurationError(path: path, message: "missing; expected \(expected)") }
            guard value == expected else { throw ConfigurationError(path: path, message: "expected \(expected), got \(quoted(value))") }
        }

        var config = KubeProxyConfiguration()
        if let mode = try string("mode"), !mode.isEmpty, mode != "ipvs" {
            throw ConfigurationError(path: "mode", message: "\(quoted(mode)): kipvs is an IPVS proxy; use ipvs or leave it empty")
        }
        config.hostnameOverride = try nonEmpty("hostnameOverride")
        config.kubeconfig = try nonEmpty("clientConnection.kubeconfig")
        if let name = try nonEmpty("ipvs.scheduler") {
            guard let scheduler = IPVSScheduler(rawValue: name) else {
                throw ConfigurationError(path: "ipvs.scheduler", message: "\(quoted(name)) is not an IPVS scheduler (\(IPVSScheduler.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            config.scheduler = scheduler
        }
        // kube-proxy defaults a zero sync period to 30s; a zero minimum means sync on every change.
        config.syncPeriod = try duration("ipvs.syncPeriod").flatMap { $0 == .zero ? nil : $0 }
        config.minSyncPeriod = try duration("ipvs.minSyncPeriod")
        config.tcpTimeout = try duration("ipvs.tcpTimeout")
        config.tcpFinTimeout = try duration("ipvs.tcpFinTimeout")
        config.udpTimeout = try duration("ipvs.udpTimeout")
        config.excludeCIDRs = try cidrList("ipvs.excludeCIDRs")
        if let addresses = try stringList("nodePortAddresses") {
            switch KubeProxyConfiguration.parseNodePortAddresses(addresses) {
            case .success(let value): config.nodePortAddresses = value
            case .failure(let error): throw ConfigurationError(path: "nodePortAddresses", message: error.message)
            }
        }
        if let text = try nonEmpty("clusterCIDR") {
            config.clusterCIDRs = try text.split(separator: ",").map { part throws(ConfigurationError) in
                let item = part.trimmingCharacters(in: .whitespaces)
                guard let cidr = CIDR(item) else { throw ConfigurationError(path: "clusterCIDR", message: "\(quoted(item)) is not a CIDR") }
                return cidr
            }
        }
        if let mode = try nonEmpty("detectLocalMode") {
            guard let chosen = KubeProxyConfiguration.LocalMode(rawValue: mode) else {
                let known = KubeProxyConfiguration.LocalMode.allCases.map(\.rawValue).joined(separator: ", ")
                let why = mode == "NodeCIDR" ? "kipvs does not read the Node object's podCIDRs; use one of \(known)"
                    : "expected one of \(known)"
                throw ConfigurationError(path: "detectLocalMode", message: "\(quoted(mode)): \(why)")
            }
            config.detectLocalMode = chosen
        }
        config.interfaceNamePrefixes = try nonEmpty("detectLocal.interfaceNamePrefix").map { [$0] }
        config.bridgeInterface = try nonEmpty("detectLocal.bridgeInterface")
        // v1alpha1 keeps masqueradeAll under iptables; kube-proxy's IPVS mode reads it from there.
        config.masqueradeAll = try bool("iptables.masqueradeAll")
        config.healthzBindAddress = try nonEmpty("healthzBindAddress")
            .map { KubeProxyConfiguration.withDefaultPort($0, KubeProxyConfiguration.healthzPort) }
        config.metricsBindAddress = try nonEmpty("metricsBindAddress")
            .map { KubeProxyConfiguration.withDefaultPort($0, KubeProxyConfiguration.metricsPort) }

        let conntrack = leaves.keys.filter { $0.hasPrefix("conntrack.") && isSet(leaves[$0]!) }.sorted()
        if !conntrack.isEmpty {
            config.ignored.append("\(conntrack.joined(separator: ", ")): kipvs sets only the conntrack settings IPVS needs")
        }
        if try bool("ipvs.strictARP") == true {
            config.ignored.append("ipvs.strictARP: kipvs leaves arp_ignore and arp_announce as they are")
        }
        return config
    }

    /// Records every leaf by path, refusing fields kube-proxy does not have.
    private mutating func collect(_ node: Node, schema: Schema, path: String) throws(ConfigurationError) {
        switch schema {
        case .opaque:
            return
        case .value:
            if node.null == nil { leaves[path] = node }
        case .object(let fields):
            if node.null != nil { return }
            guard case .mapping(let mapping) = node else {
                throw ConfigurationError(path: path, message: "expected an object")
            }
            // Yams' parser has already refused repeated keys.
            for (key, value) in mapping {
                guard let name = key.scalar?.string else { throw ConfigurationError(path: path, message: "a key that is not a string") }
                let child = path.isEmpty ? name : "\(path).\(name)"
                guard let field = fields[name] else { throw ConfigurationError(path: child, message: "unknown field") }
                try collect(value, schema: field, path: child)
            }
        }
    }

    private func string(_ path: String) throws(ConfigurationError) -> String? {
        guard let node = leaves[path] else { return nil }
        guard case .scalar(let scalar) = node else { throw ConfigurationError(path: path, message: "expected a string") }
        // A plain 123 or true is a number or a boolean to kube-proxy's JSON decoder, not a string.
        let tag = Tag.Name(rawValue: node.tag.description)
        if scalar.style == .plain, tag == .int || tag == .float || tag == .bool {
            throw ConfigurationError(path: path, message: "expected a string, got \(scalar.string)")
        }
        return scalar.string
    }

    private func nonEmpty(_ path: String) throws(ConfigurationError) -> String? {
        guard let text = try string(path), !text.isEmpty else { return nil }
        return text
    }

    private func bool(_ path: String) throws(ConfigurationError) -> Bool? {
        guard let node = leaves[path] else { return nil }
        if case .scalar(let scalar) = node, scalar.style == .plain {
            switch scalar.string {
            case "true": return true
            case "false": return false
            default: break
            }
        }
        throw ConfigurationError(path: path, message: "expected true or false, got \(shortText(node))")
    }

    private func duration(_ path: String) throws(ConfigurationError) -> Duration? {
        guard let text = try string(path) else { return nil }
        guard let duration = KubeProxyConfiguration.parseGoDuration(text) else {
            throw ConfigurationError(path: path, message: "\(quoted(text)) is not a duration (e.g. 30s, 1m0s, 500ms)")
        }
        return duration
    }

    private func stringList(_ path: String) throws(ConfigurationError) -> [String]? {
        guard let node = leaves[path] else { return nil }
        guard case .sequence(let items) = node else { throw ConfigurationError(path: path, message: "expected a list") }
        var out: [String] = []
        for (index, item) in items.enumerated() {
            guard case .scalar(let scalar) = item, item.null == nil else {
                throw ConfigurationError(path: "\(path)[\(index)]", message: "expected a string")
            }
            out.append(scalar.string)
        }
        return out
    }

    private func cidrList(_ path: String) throws(ConfigurationError) -> [CIDR]? {
        guard let items = try stringList(path) else { return nil }
        return try items.enumerated().map { index, item throws(ConfigurationError) in
            guard let cidr = CIDR(item.trimmingCharacters(in: .whitespaces)) else {
                throw ConfigurationError(path: "\(path)[\(index)]", message: "\(quoted(item)) is not a CIDR")
            }
            return cidr
        }
    }

    /// Whether an ignored field holds anything but its zero value.
    private func isSet(_ node: Node) -> Bool {
        guard case .scalar(let scalar) = node else { return true }
        return !["", "0", "0s", "false"].contains(scalar.string)
    }

    private func shortText(_ node: Node) -> String {
        switch node {
        case .scalar(let scalar): quoted(scalar.string)
        case .mapping: "an object"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }

    private func quoted(_ text: String) -> String {
        let short = text.count > 60 ? text.prefix(57) + "..." : Substring(text)
        return "\"\(short)\""
    }
}
