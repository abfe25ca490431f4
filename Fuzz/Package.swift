// swift-tools-version: 6.1
// libFuzzer targets for kipvs' decoders of untrusted bytes. Built apart from the main package
// (run.sh, `make fuzz`): every module is compiled with coverage instrumentation and AddressSanitizer.
// The main package exports no library products, so its modules are taken here from their source
// directories (Modules/ holds symbolic links to ../Sources) rather than as a dependency.
import PackageDescription

let package = Package(
    name: "kipvs-fuzz",
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .target(name: "CMnl", path: "Modules/CMnl", linkerSettings: [.linkedLibrary("mnl")]),
        .target(name: "Netlink", dependencies: ["CMnl"], path: "Modules/Netlink"),
        .target(name: "IPVS", dependencies: ["Netlink", "CMnl"], path: "Modules/IPVS"),
        .target(name: "IPVSText", dependencies: ["IPVS"], path: "Modules/IPVSText"),
        .target(name: "CNftnl", path: "Modules/CNftnl", linkerSettings: [.linkedLibrary("nftnl"), .linkedLibrary("mnl")]),
        .target(name: "NFTables", dependencies: ["Netlink", "CNftnl"], path: "Modules/NFTables"),
        .target(name: "HostNetwork", dependencies: ["Netlink", "IPVS"], path: "Modules/HostNetwork"),
        .target(
            name: "Proxy",
            dependencies: [
                "IPVS", "IPVSText", "HostNetwork", "NFTables", "Netlink",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Modules/Proxy"
        ),
        // The API source's decoding files only: the rest of KubernetesSource is its HTTP client.
        .target(
            name: "KubernetesSource",
            dependencies: ["Proxy", .product(name: "Yams", package: "Yams")],
            path: "Modules/KubernetesDecoding"
        ),
        // libFuzzer's driver called from the executable's own main, and `use` for results.
        .target(name: "FuzzDriver", path: "Targets/FuzzDriver"),
        .target(name: "FuzzSupport", dependencies: ["FuzzDriver"], path: "Targets/FuzzSupport"),
        .executableTarget(
            name: "netlink-replies",
            dependencies: ["FuzzSupport", "Netlink", "IPVS", "HostNetwork", "NFTables"],
            path: "Targets/netlink-replies"
        ),
        .executableTarget(name: "ipvsadm-rules", dependencies: ["FuzzSupport", "IPVS", "IPVSText"], path: "Targets/ipvsadm-rules"),
        .executableTarget(name: "manifests", dependencies: ["FuzzSupport", "Proxy"], path: "Targets/manifests"),
        .executableTarget(
            name: "api-responses",
            dependencies: ["FuzzSupport", "KubernetesSource", "Proxy"],
            path: "Targets/api-responses"
        ),
    ]
)
