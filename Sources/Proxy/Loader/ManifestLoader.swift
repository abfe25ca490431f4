import Yams

/// Reads Services, EndpointSlices and Nodes from manifest text: YAML (one or many documents) or JSON,
/// single objects or `kind: List` (what `kubectl get svc,endpointslices -A -o yaml` prints).
/// Other kinds and unknown fields are ignored; invalid objects fail the whole load.
public enum ManifestLoader {
    /// Parses one text. `source` names it in errors (usually the file path).
    public static func parse(_ text: String, source: String) throws(LoadError) -> ClusterState {
        var collector = ManifestCollector()
        collector.add(text, source: source)
        return try collector.result()
    }
}

/// Accumulates objects from several sources, and every problem found on the way.
struct ManifestCollector {
    private(set) var state = ClusterState()
    private(set) var problems: [LoadError.Problem] = []
    /// Sources that held no object at all (empty, only comments, or only empty documents).
    private(set) var emptySources: [String] = []
    /// `Service default/web` → the source that defined it.
    private var definedIn: [String: String] = [:]

    func result() throws(LoadError) -> ClusterState {
        guard problems.isEmpty else { throw LoadError(problems: problems) }
        return state
    }

    mutating func problem(in source: String, object: String? = nil, _ message: String) {
        problems.append(LoadError.Problem(source: source, object: object, message: message))
    }

    mutating func add(_ text: String, source: String) {
        guard text.utf8.count <= TextLimits.fileBytes else {
            return problem(in: source, "is \(text.utf8.count) bytes; manifests over \(TextLimits.fileBytes >> 20) MiB are refused")
        }
        var objects = 0
        do {
            try YAMLText.forEachDocument(in: text) { document in
                if document.null == nil { objects += 1 }
                addObject(Field(document), source: source)
            }
        } catch {
            problem(in: source, "\(error)")
        }
        if objects == 0 { emptySources.append(source) }
    }

    private mutating func addObject(_ object: Field, source: String) {
        if object.isNull { return }  // an empty document
        guard case .mapping = object.node else {
            return problem(in: source, object: object.location, "expected an object with apiVersion and kind")
        }
        let kind: String
        let apiVersion: String
        do {
            kind = try object.optional("kind")?.string() ?? ""
            apiVersion = try object.optional("apiVersion")?.string() ?? ""
        } catch {
            return problem(in: source, object: object.location, "\(error)")
        }
        guard !kind.isEmpty else { return problem(in: source, object: object.location, "kind: missing") }

        // `List` from kubectl, `ServiceList` etc. from the API: both carry `items`.
        if kind.hasSuffix("List") {
            do {
                for item in try object.optional("items")?.list() ?? [] { addObject(item, source: source) }
            } catch {
                problem(in: source, object: "\(kind) at \(object.location ?? "?")", "\(error)")
            }
            return
        }

        switch (apiVersion, kind) {
        case ("v1", "Service"):
            if let service = decode(object, kind: kind, source: source, as: Service.init) {
                state.services.append(service)
            }
        case ("discovery.k8s.io/v1", "EndpointSlice"):
            if let slice = decode(object, kind: kind, source: source, as: EndpointSlice.init) {
                state.endpointSlices.append(slice)
            }
        case ("v1", "Node"):
            if let node = node(object, source: source) { state.nodes.append(node) }
        default:
            break  // Not ours (and `Service` of another API group, e.g. Knative's, is not a v1 Service).
        }
    }

    private mutating func decode<T>(_ object: Field, kind: String, source: String,
                                    as make: (Field, ObjectMeta) throws -> T) -> T? {
        let metadata: ObjectMeta
        do {
            metadata = try ObjectMeta(object, names: kind == "EndpointSlice" ? .dns1123Subdomain : .dns1123Label)
        } catch {
            problem(in: source, object: "\(kind) at \(object.location ?? "?")", "\(error)")
            return nil
        }
        let name = "\(kind) \(metadata.qualifiedName)"
        // Not validated further: kube-proxy's informers never see these.
        if metadata.isForAnotherProxy || (kind == "EndpointSlice" && metadata.labels[WellKnown.headless] != nil) {
            return nil
        }
        if let previous = definedIn[name] {
            problem(in: source, object: name, previous == source ? "defined twice" : "also defined in \(previous)")
            return nil
        }
        definedIn[name] = source
        do {
            return try make(object, metadata)
        } catch {
            problem(in: source, object: name, "\(error)")
            return nil
        }
    }
}
