import IPVS

// Field-by-field decoding of the objects kipvs reads, with the API server's validation rules
// for those fields. Unknown fields are ignored.

extension ObjectMeta {
    /// `names` is the rule for `metadata.name`, which differs by kind.
    init(_ object: Field, names: NameRule) throws {
        let metadata = try object.required("metadata")
        let name = try metadata.required("name").name(names)
        // Hand-written manifests often omit the namespace; kubectl would put them in `default`.
        let namespace = try metadata.optional("namespace")?.name(.dns1123Label, allowEmpty: true) ?? ""
        self.init(
            name: name,
            namespace: namespace.isEmpty ? "default" : namespace,
            labels: try metadata.optional("labels")?.stringMap() ?? [:],
            annotations: try metadata.optional("annotations")?.stringMap() ?? [:])
    }
}

extension Service {
    init(_ object: Field, metadata: ObjectMeta) throws {
        let spec = try object.optional("spec")
        let type = try spec?.optional("type")?.oneOf(ServiceType.self) ?? .clusterIP

        // `clusterIPs` supersedes `clusterIP` (its first element is the same address).
        var ipFields: [Field] = []
        if let list = try spec?.optional("clusterIPs") {
            ipFields = try list.list()
        } else if let single = try spec?.optional("clusterIP") {
            ipFields = [single]
        }
        let isHeadless = try ipFields.first?.string() == "None"
        let clusterIPs = isHeadless ? [] : try ipFields.filter { try $0.string() != "" }.map { try $0.ipAddress() }

        var sessionAffinity = SessionAffinity.none
        if try spec?.optional("sessionAffinity")?.oneOf(AffinityName.self) == .clientIP {
            var timeout = SessionAffinity.defaultTimeoutSeconds
            if let field = try spec?.optional("sessionAffinityConfig")?.optional("clientIP")?.optional("timeoutSeconds") {
                let value = try field.int()
                guard (1...86400).contains(value) else { throw field.error("\(value) is out of range 1-86400") }
                timeout = UInt32(value)
            }
            sessionAffinity = .clientIP(timeoutSeconds: timeout)
        }

        self.init(
            metadata: metadata,
            type: type,
            clusterIPs: clusterIPs,
            isHeadless: isHeadless,
            ports: try spec?.optional("ports")?.list().map(Port.init) ?? [],
            externalIPs: try spec?.optional("externalIPs")?.list().map { try $0.ipAddress() } ?? [],
            sessionAffinity: sessionAffinity,
            externalTrafficPolicy: try spec?.optional("externalTrafficPolicy")?.oneOf(TrafficPolicy.self) ?? .cluster,
            internalTrafficPolicy: try spec?.optional("internalTrafficPolicy")?.oneOf(TrafficPolicy.self) ?? .cluster,
            ipFamilies: try spec?.optional("ipFamilies")?.list().map { try $0.oneOf(FamilyName.self).family } ?? [],
            loadBalancerIngress: try object.optional("status")?.optional("loadBalancer")?.optional("ingress")?
                .list().compactMap(LoadBalancerIngress.init) ?? [],
            loadBalancerSourceRanges: try spec?.optional("loadBalancerSourceRanges")?.list().map { try $0.cidr() } ?? [],
            // The API server writes 0 for "not allocated".
            healthCheckNodePort: try spec?.optional("healthCheckNodePort").flatMap { try $0.int() == 0 ? nil : $0.port() },
            trafficDistribution: try TrafficDistribution.decode(spec?.optional("trafficDistribution")))
    }

    private enum AffinityName: String, CaseIterable {
        case none = "None"
        case clientIP = "ClientIP"
    }
}

extension Service.Port {
    init(_ field: Field) throws {
        let port = try field.required("port").port()
        var targetPort: Service.TargetPort?
        if let target = try field.optional("targetPort") {
            if let number = try? target.int() {  // not a number: then a port name, checked below
                guard (1...65535).contains(number) else { throw target.error("\(number) is out of range 1-65535") }
                targetPort = .number(UInt16(number))
            } else {
                // A container port's name.
                targetPort = .name(try target.name(.ianaServiceName))
            }
        }
        // The API server writes 0 for "not allocated".
        let nodePort = try field.optional("nodePort").flatMap { try $0.int() == 0 ? nil : $0.port() }
        self.init(
            name: try field.optional("name")?.name(.dns1123Label, allowEmpty: true) ?? "",
            protocol: try field.optional("protocol")?.ipProtocol() ?? .tcp,
            port: port,
            targetPort: targetPort,
            nodePort: nodePort)
    }
}

extension Service.LoadBalancerIngress {
    /// nil for hostname-only entries, which a proxy cannot use.
    init?(_ field: Field) throws {
        guard let ip = try field.optional("ip")?.ipAddress() else { return nil }
        self.init(ip: ip, ipMode: try field.optional("ipMode")?.oneOf(IPMode.self) ?? .vip)
    }
}

/// `IPv4` / `IPv6` as the API spells families.
private enum FamilyName: String, CaseIterable {
    case ipv4 = "IPv4"
    case ipv6 = "IPv6"

    var family: IPAddress.Family { self == .ipv4 ? .inet : .inet6 }
}

extension EndpointSlice {
    init(_ object: Field, metadata: ObjectMeta) throws {
        let addressType = try object.required("addressType").oneOf(AddressType.self)
        let endpoints = try object.optional("endpoints")?.list() ?? []
        self.init(
            metadata: metadata,
            addressType: addressType,
            // FQDN endpoints are host names; nothing a proxy can route to.
            endpoints: addressType == .fqdn ? [] : try endpoints.map { try Endpoint($0, family: addressType) },
            ports: try object.optional("ports")?.list().map(Port.init) ?? [])
    }
}

extension EndpointSlice.Endpoint {
    init(_ field: Field, family addressType: EndpointSlice.AddressType) throws {
        let addressFields = try field.required("addresses").list()
        guard !addressFields.isEmpty else { throw FieldError(path: "\(field.path).addresses", message: "empty") }
        let addresses = try addressFields.map { item in
            let address = try item.ipAddress()
            guard address.family == addressType.family else {
                throw item.error("\(address) does not match addressType \(addressType.rawValue)")
            }
            return address
        }
        // The API's nil meanings: ready and serving default to true, terminating to false.
        let conditions = try field.optional("conditions")
        self.init(
            addresses: addresses,
            conditions: EndpointSlice.Conditions(
                ready: try conditions?.optional("ready")?.bool() ?? true,
                serving: try conditions?.optional("serving")?.bool() ?? true,
                terminating: try conditions?.optional("terminating")?.bool() ?? false),
            nodeName: try field.optional("nodeName")?.string(),
            zone: try field.optional("zone")?.string(),
            hints: try EndpointSlice.Hints(field.optional("hints")),
            podName: try Self.podName(field))
    }
}

extension EndpointSlice.Port {
    init(_ field: Field) throws {
        self.init(
            // The name of the Service port it serves.
            name: try field.optional("name")?.name(.dns1123Label, allowEmpty: true) ?? "",
            port: try field.optional("port")?.port(),
            protocol: try field.optional("protocol")?.ipProtocol() ?? .tcp)
    }
}
