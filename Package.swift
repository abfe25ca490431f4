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
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // libmnl and the kernel's netlink/IPVS headers; a few helpers for macros Swift cannot import.
        .target(
            name: "CMnl",
            linkerSettings: [.linkedLibrary("mnl")]
        ),
        .target(name: "Netlink", dependencies: ["CMnl"]),
        .target(name: "IPVS", dependencies: ["Netlink", "CMnl"]),
        // ipvsadm's text: the rule syntax `restore` reads, and the printers of `save`, `status` and `plan`.
        .target(name: "IPVSText", dependencies: ["IPVS"]),
        // libnftnl and the kernel's nf_tables headers; a few helpers for macros Swift cannot import.
        .target(
            name: "CNftnl",
            linkerSettings: [.linkedLibrary("nftnl"), .linkedLibrary("mnl")]
        ),
        .target(name: "NFTables", dependencies: ["Netlink", "CNftnl"]),
        .target(name: "HostNetwork", dependencies: ["Netlink", "IPVS"]),
        .target(
            name: "Proxy",
            dependencies: [
                "IPVS", "IPVSText", "HostNetwork", "NFTables", "Netlink",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Services and EndpointSlices from the Kubernetes API: list and watch, as client-go's reflector.
        .target(
            name: "KubernetesSource",
            dependencies: [
                "Proxy",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The agent's /healthz and /metrics, as kube-proxy serves them.
        .target(
            name: "Observability",
            dependencies: [
                "Proxy", "IPVS", "Netlink",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "kipvs",
            dependencies: [
                "IPVS",
                "IPVSText",
                "CMnl",
                "Proxy",
                "HostNetwork",
                "KubernetesSource",
                "Observability",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(name: "NetlinkTests", dependencies: ["Netlink"]),
        // What every IPVSHandle shares with the kernel, as test cases run against FakeIPVS on any host
        // (IPVSTests) and against the kernel in a guest (KernelTests).
        .target(name: "IPVSTestKit", dependencies: ["IPVS", "Netlink"], path: "Tests/IPVSTestKit"),
        .testTarget(name: "IPVSTests", dependencies: ["IPVS", "IPVSText", "IPVSTestKit", "Netlink", "CMnl"]),
        .testTarget(name: "HostNetworkTests", dependencies: ["HostNetwork", "IPVS", "Netlink", "CMnl"]),
        .testTarget(name: "NFTablesTests", dependencies: ["NFTables", "Netlink", "CNftnl"]),
        .testTarget(name: "ProxyTests", dependencies: ["Proxy", "IPVS", "IPVSText", "NFTables", "HostNetwork", "Netlink"]),
        // A Kubernetes API server for tests: list, watch, discovery and injected faults, on loopback.
        .target(
            name: "KubeAPIServer",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            path: "Tests/KubeAPIServer"
        ),
        // Test tooling, not shipped: the test API server as a process, with an admin interface for
        // the guest's scripts (integration/tests/agent-kubernetes.sh, integration/bench/api-latency.sh).
        .executableTarget(
            name: "kube-api-test-server",
            dependencies: [
                "KubeAPIServer",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            path: "Tests/KubeAPITestServerMain"
        ),
        // Test tooling, not shipped: times programming the packet filter for a generated cluster
        // next to nft on the same table (integration/bench/packet-filter.sh).
        .executableTarget(
            name: "packet-filter-bench",
            dependencies: ["Proxy", "NFTables", "IPVS"],
            path: "Tests/PacketFilterBench"
        ),
        .testTarget(
            name: "KubernetesSourceTests",
            dependencies: [
                "KubernetesSource", "KubeAPIServer", "Proxy", "IPVS",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "ObservabilityTests",
            dependencies: [
                "Observability", "Proxy", "IPVS", "KubernetesSource", "KubeAPIServer",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // The container image and the manifests that deploy it.
        .testTarget(
            name: "DeploymentTests",
            dependencies: ["Proxy", .product(name: "Yams", package: "Yams")]
        ),
        // Run only where the kernel has IPVS and the process is root: inside the UML guest.
        .testTarget(name: "KernelTests", dependencies: ["IPVS", "IPVSTestKit", "Netlink", "HostNetwork", "NFTables"]),
    ]
)
