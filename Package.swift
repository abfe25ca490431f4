// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "kipvs",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "kipvs", targets: ["kipvs"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // libmnl and the kernel's netlink/IPVS headers; a few helpers for macros Swift cannot import.
        .target(
            name: "CMnl",
            linkerSettings: [.linkedLibrary("mnl")]
        ),
        .target(name: "Netlink", dependencies: ["CMnl"]),
        .target(name: "IPVS", dependencies: ["Netlink", "CMnl"]),
        .target(name: "HostNetwork", dependencies: ["Netlink", "IPVS"]),
        .target(
            name: "Proxy",
            dependencies: [
                "IPVS", "HostNetwork",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "kipvs",
            dependencies: [
                "IPVS",
                "CMnl",
                "Proxy",
                "HostNetwork",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "NetlinkTests", dependencies: ["Netlink"]),
        .testTarget(name: "IPVSTests", dependencies: ["IPVS", "Netlink", "CMnl"]),
        .testTarget(name: "ProxyTests", dependencies: ["Proxy", "IPVS"]),
        // Run only where the kernel has IPVS and the process is root: inside the UML guest.
        .testTarget(name: "KernelTests", dependencies: ["IPVS", "Netlink", "HostNetwork"]),
    ]
)
