import Foundation
import HostNetwork
import IPVS
import Testing

@Suite(.serialized, .enabled(if: Kernel.hasIPVS, "needs root inside the test kernel"))
struct HostNetworkKernelTests {
    let name = "kipvs-test0"

    func addressesShownByIp() throws -> Set<String> {
        let output = try Kernel.run(["ip", "-o", "addr", "show", "dev", name]).output
        return Set(output.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            guard let i = fields.firstIndex(where: { $0 == "inet" || $0 == "inet6" }), i + 1 < fields.count else { return nil }
            let text = String(fields[i + 1])
            return text.hasPrefix("fe80") ? nil : text  // the kernel's own link-local address
        })
    }

    @Test func dummyInterfaceAndAddressesConvergeAsIpSeesThem() throws {
        let host = try HostNetwork()
        try host.deleteInterface(named: name)
        let index = try host.ensureDummyInterface(named: name)
        #expect(try host.ensureDummyInterface(named: name) == index)  // idempotent
        #expect(try Kernel.run(["ip", "-o", "link", "show", name]).output.contains("UP"))
        // Taken down behind its back, the next call brings it up again.
        try Kernel.run(["ip", "link", "set", name, "down"])
        #expect(try host.ensureDummyInterface(named: name) == index)
        #expect(try Kernel.run(["ip", "-o", "link", "show", name]).output.contains(",UP"))

        let first: Set<IPAddress> = [.v("10.96.0.10"), .v("10.96.0.11"), .v("fd00::10")]
        #expect(try host.syncAddresses(onInterface: index, to: first) == (added: 3, removed: 0))
        #expect(try addressesShownByIp() == ["10.96.0.10/32", "10.96.0.11/32", "fd00::10/128"])

        let second: Set<IPAddress> = [.v("10.96.0.11"), .v("10.96.0.12")]
        #expect(try host.syncAddresses(onInterface: index, to: second) == (added: 1, removed: 2))
        #expect(try addressesShownByIp() == ["10.96.0.11/32", "10.96.0.12/32"])
        #expect(try host.syncAddresses(onInterface: index, to: second) == (added: 0, removed: 0))

        let listed = try host.addresses().filter { $0.interfaceIndex == index && !$0.address.isIPv6LinkLocal }.map(\.address)
        #expect(Set(listed) == second)

        try host.deleteInterface(named: name)
        #expect(try host.interfaceIndex(named: name) == nil)
    }

    @Test func sysctlEnsureWritesOnlyWhenDifferent() throws {
        let key = "net.ipv4.vs.expire_nodest_conn"
        let before = try Sysctl.read(key)
        try Sysctl.ensure(key, "0")
        #expect(try Sysctl.ensure(key, "1") == true)
        #expect(try Sysctl.ensure(key, "1") == false)
        #expect(try Kernel.run(["sysctl", "-n", key]).output.trimmingCharacters(in: .whitespacesAndNewlines) == "1")
        if let before { try Sysctl.ensure(key, before) }
    }
}
