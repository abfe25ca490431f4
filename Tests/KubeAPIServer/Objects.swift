/// Builders for the objects tests put on the server, in the API's JSON shape.
public enum Objects {
    public static func service(_ name: String, namespace: String = "default", clusterIP: String,
                               ports: [Int] = [80], labels: [String: String] = [:]) -> JSON {
        [
            "metadata": ["name": .string(name), "namespace": .string(namespace), "labels": .object(labels.mapValues(JSON.string))],
            "spec": [
                "type": "ClusterIP", "clusterIP": .string(clusterIP), "clusterIPs": [.string(clusterIP)],
                "ports": .array(ports.map { ["name": .string("p\($0)"), "protocol": "TCP", "port": .int($0), "targetPort": .int($0 + 8000)] }),
                "sessionAffinity": "None", "ipFamilies": ["IPv4"], "internalTrafficPolicy": "Cluster",
            ],
            "status": ["loadBalancer": [:]],
        ]
    }

    public static func endpointSlice(_ name: String, namespace: String = "default", service: String,
                                     addresses: [String], ports: [Int] = [80]) -> JSON {
        [
            "metadata": ["name": .string(name), "namespace": .string(namespace),
                         "labels": ["kubernetes.io/service-name": .string(service),
                                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"]],
            "addressType": "IPv4",
            "endpoints": .array(addresses.map { ["addresses": [.string($0)], "conditions": ["ready": true, "serving": true, "terminating": false],
                                                  "nodeName": "node-a"] }),
            "ports": .array(ports.map { ["name": .string("p\($0)"), "protocol": "TCP", "port": .int($0 + 8000)] }),
        ]
    }
}
