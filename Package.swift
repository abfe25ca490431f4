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
    ],
    targets: [
        // libmnl and the kernel's netlink/IPVS headers; a few helpers for macros Swift cannot import.
        .target(
            name: "CMnl",
            linkerSettings: [.linkedLibrary("mnl")]
        ),
        .target(name: "Netlink", dependencies: ["CMnl"]),
        .target(name: "IPVS", dependencies: ["Netlink", "CMnl"]),
        .executableTarget(
            name: "kipvs",
            dependencies: [
                "IPVS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "NetlinkTests", dependencies: ["Netlink"]),
        .testTarget(name: "IPVSTests", dependencies: ["IPVS", "Netlink"]),
    ]
)
