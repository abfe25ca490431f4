import ArgumentParser
import Foundation
import IPVS
import IPVSText
import NFTables
import Proxy

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show the kernel's IPVS table, as `ipvsadm -Ln` does, or with the Services it serves.")

    @Flag(help: "Show traffic counters instead of connection counts.") var stats = false
    @Flag(help: "Show per-second rates.") var rate = false
    @Flag(help: "Show upper and lower connection thresholds.") var thresholds = false
    @Flag(name: .customLong("persistent-conn"), help: "Show persistent connection templates.") var persistentConnections = false
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "Show the sets of the packet filter table (inet kipvs) instead, one element a line.") var sets = false
    @Flag(help: """
        Show each virtual server with its Service port, type and traffic policies, and each real server with its \
        endpoint's state and connections; virtual servers no Service explains as stale or foreign. Reads the cluster \
        as run does (--source, --config and the node flags).
        """) var services = false

    @OptionGroup var serviceSource: ServiceSourceOptions
    @OptionGroup var nodeOptions: NodeOptions

    var columns: ListFormat.Columns {
        if stats { return .stats }
        if rate { return .rate }
        if thresholds { return .thresholds }
        if persistentConnections { return .persistentConnections }
        return .connections
    }

    func validate() throws {
        if services, sets || json || columns != .connections {
            throw ValidationError("--services shows connection counts as text: it takes no --sets, --json or other columns")
        }
    }

    func run() async throws {
        if services { return try await showServices() }
        if sets { return try showSets() }
        let ipvs = try openIPVS()
        let table = try ipvs.table()
        if json {
            print(try StatusJSON.render(info: try ipvs.info(), table: table))
        } else {
            print(ListFormat.render(info: try ipvs.info(), table: table, columns: columns),
                  terminator: "")
        }
    }
}

extension StatusCommand {
    func showSets() throws {
        let name = PacketFilterConfig().table
        guard let table = try KernelNFTables().table(name) else {
            throw ValidationFailure("status: no table \(name): kipvs has not programmed the packet filter on this node")
        }
        for set in table.sets.sorted(by: { $0.name < $1.name }) {
            let elements = (table.elements[set.name] ?? []).map { PacketFilterFormat.element($0, in: set.name) }.sorted()
            print("\(set.name) (\(elements.count))")
            for element in elements { print("  \(element)") }
        }
    }
}

struct SaveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "save", abstract: "Print the table in `ipvsadm -S -n` syntax.")

    @Flag(help: "Print timings and the number of netlink system calls to standard error.") var report = false

    func run() throws {
        keepFreedMemory()
        let clock = ContinuousClock()
        let start = clock.now
        let ipvs = try openIPVS()
        var out = BufferedStandardOutput()
        try SaveFormat.write(from: ipvs, to: &out)
        do {
            try out.finish()
        } catch {
            throw ValidationFailure("save: \(error); the output is incomplete")
        }
        if report {
            let c = ipvs.connection
            FileHandle.standardError.write(Data("""
                \(c.sends + c.receives) system calls (\(c.sends) sends, \(c.receives) receives) in \(clock.now - start)

                """.utf8))
        }
    }
}

struct FlushCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flush", abstract: "Remove every virtual server (as `ipvsadm -C`).")

    func run() throws {
        try openIPVS().flush()
    }
}

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version", abstract: "Print kipvs' version and, when available, the kernel's IPVS version.")

    func run() throws {
        print("kipvs \(Kipvs.version)")
        do {
            let info = try KernelIPVS().info()
            print("IPVS \(info.versionString) (connection table size \(info.connectionTableSize))")
        } catch let error as IPVSError where error.kind == .unavailable {
            print("IPVS not available in this kernel")
        } catch {
            print("IPVS version unknown: \(error)")  // e.g. not root: the kernel has IPVS but will not say
        }
    }
}

/// `kipvs status --json`: the table as plain JSON values.
enum StatusJSON {
    struct Table: Encodable {
        let version: String
        let connectionTableSize: UInt32
        let virtualServers: [Virtual]
    }

    struct Virtual: Encodable {
        let `protocol`: String?
        let address: String?
        let port: UInt16?
        let firewallMark: UInt32?
        let family: String
        let scheduler: String
        let persistent: Bool
        let timeout: UInt32
        let netmask: UInt32
        let flags: UInt32
        let statistics: Stats
        let realServers: [Real]
    }

    struct Real: Encodable {
        let address: String
        let port: UInt16
        let forwarding: String
        let weight: Int32
        let upperThreshold: UInt32
        let lowerThreshold: UInt32
        let activeConnections: UInt32
        let inactiveConnections: UInt32
        let persistentConnections: UInt32
        let statistics: Stats
    }

    struct Stats: Encodable {
        let connections, packetsIn, packetsOut, bytesIn, bytesOut: UInt64
        init(_ s: Statistics) {
            (connections, packetsIn, packetsOut, bytesIn, bytesOut) = (s.connections, s.packetsIn, s.packetsOut, s.bytesIn, s.bytesOut)
        }
    }

    static func render(info: IPVSInfo, table: [(VirtualServerStatus, [RealServerStatus])]) throws -> String {
        let virtuals = table.map { status, reals -> Virtual in
            let s = status.server
            var proto: String?, address: String?, port: UInt16?, mark: UInt32?
            switch s.key {
            case .service(let p, let a, let po): (proto, address, port) = (p.description, a.description, po)
            case .firewallMark(_, let m): mark = m
            }
            return Virtual(
                protocol: proto, address: address, port: port, firewallMark: mark,
                family: s.key.family == .inet ? "IPv4" : "IPv6", scheduler: s.scheduler, persistent: s.isPersistent,
                timeout: s.timeout, netmask: s.netmask, flags: s.flags.rawValue, statistics: Stats(status.statistics),
                realServers: reals.map { r in
                    Real(address: r.server.key.address.description, port: r.server.key.port, forwarding: r.server.forwarding.name,
                         weight: r.server.weight, upperThreshold: r.server.upperThreshold, lowerThreshold: r.server.lowerThreshold,
                         activeConnections: r.activeConnections, inactiveConnections: r.inactiveConnections,
                         persistentConnections: r.persistentConnections, statistics: Stats(r.statistics))
                })
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(Table(version: info.versionString, connectionTableSize: info.connectionTableSize,
                                            virtualServers: virtuals))
        return String(decoding: data, as: UTF8.self)
    }
}
