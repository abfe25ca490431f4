import Foundation

/// What identifies an object across manifest files: its kind and name.
enum ManifestKey: Hashable, Comparable, Sendable, CustomStringConvertible {
    case service(ObjectName)
    case endpointSlice(ObjectName)
    case node(String)

    /// As a load names the object in a problem: `Service default/web`.
    var description: String {
        switch self {
        case .service(let name): "Service \(name)"
        case .endpointSlice(let name): "EndpointSlice \(name)"
        case .node(let name): "Node \(name)"
        }
    }

    static func < (a: ManifestKey, b: ManifestKey) -> Bool { (a.rank, a.description) < (b.rank, b.description) }

    private var rank: Int {
        switch self {
        case .service: 0
        case .endpointSlice: 1
        case .node: 2
        }
    }
}

/// One object of a manifest file.
enum ManifestObject: Hashable, Sendable {
    case service(Service)
    case endpointSlice(EndpointSlice)
    case node(ClusterNode)
}

/// What one manifest file held when it was read.
struct ManifestFileContent: Sendable {
    var objects: [ManifestKey: ManifestObject] = [:]
    /// What is wrong in the file itself; any problem refuses the whole set.
    var problems: [LoadError.Problem] = []
    /// No object at all (empty, only comments, or cut short while being written): refused.
    var isEmpty = false

    init(problem: String, in path: String) {
        problems = [LoadError.Problem(source: path, message: problem)]
    }

    /// Parses a file's text.
    init(text: String, path: String) {
        var collector = ManifestCollector()
        collector.add(text, source: path)
        problems = collector.problems
        isEmpty = !collector.emptySources.isEmpty
        for service in collector.state.services { objects[.service(ObjectName(service.metadata))] = .service(service) }
        for slice in collector.state.endpointSlices {
            objects[.endpointSlice(ObjectName(slice.metadata))] = .endpointSlice(slice)
        }
        for node in collector.state.nodes { objects[.node(node.name)] = .node(node) }
    }

    /// What a look says the path holds: nil when it holds no file (gone, or the root directory).
    /// The root gone is a problem; a file in the root directory gone just takes its objects away.
    static func read(_ path: String, look: ManifestLook, isRoot: Bool) -> ManifestFileContent? {
        switch look {
        case .absent: isRoot ? ManifestFileContent(problem: "no such file or directory", in: path) : nil
        case .directory: nil
        case .unreadable(let message): ManifestFileContent(problem: message, in: path)
        case .file:
            switch ManifestLoader.read(path) {
            case .success(let text): ManifestFileContent(text: text, path: path)
            case .failure(let error): ManifestFileContent(problem: error.message, in: path)
            }
        }
    }
}

/// How a file's objects differ from what it held before, by key; worked out where the file is
/// read, so that the caller's thread does work in proportion to the change only.
struct ManifestDelta: Sendable {
    var gone: [ManifestKey] = []
    var added: [ManifestKey] = []
    var changed: [ManifestKey] = []

    init(from old: ManifestFileContent?, to new: ManifestFileContent?) {
        let before = old?.objects ?? [:]
        let after = new?.objects ?? [:]
        for (key, object) in after {
            switch before[key] {
            case nil: added.append(key)
            case object?: break
            default: changed.append(key)
            }
        }
        gone = before.keys.filter { after[$0] == nil }
    }
}

/// The objects of every manifest file, kept file by file, and the objects last handed out. A
/// change of some files costs in proportion to those files: the changes handed out are worked out
/// from the objects those files held and hold, never from all objects.
struct ManifestSet {
    private(set) var contents: [String: ManifestFileContent] = [:]
    /// For each object, the files that define it, in name order; more than one is a duplicate.
    private var definers: [ManifestKey: [String]] = [:]
    private var duplicated: Set<ManifestKey> = []
    /// Files with problems of their own.
    private var troubled: Set<String> = []
    private var emptyFiles: Set<String> = []
    /// The objects as last handed out.
    private(set) var handedOut: [ManifestKey: ManifestObject] = [:]
    private var handedOutServices = 0
    /// Objects whose definition may differ from the one handed out.
    private var touched: Set<ManifestKey> = []

    /// Takes in what a file now holds (nil: the file is gone); `delta` is how that differs from
    /// what it held.
    mutating func replace(_ path: String, with content: ManifestFileContent?, delta: ManifestDelta) {
        contents[path] = content
        for key in delta.gone {
            definers[key]?.removeAll { $0 == path }
            noteDefiners(of: key)
        }
        for key in delta.added {
            var files = definers[key] ?? []
            files.insert(path, at: files.firstIndex { $0 > path } ?? files.endIndex)
            definers[key] = files
            noteDefiners(of: key)
        }
        touched.formUnion(delta.changed)
        troubled.remove(path)
        emptyFiles.remove(path)
        if content?.problems.isEmpty == false { troubled.insert(path) }
        if content?.isEmpty == true { emptyFiles.insert(path) }
    }

    private mutating func noteDefiners(of key: ManifestKey) {
        touched.insert(key)
        switch definers[key]?.count ?? 0 {
        case 0:
            definers[key] = nil
            duplicated.remove(key)
        case 1: duplicated.remove(key)
        default: duplicated.insert(key)
        }
    }

    /// Why the files cannot be used as they are, as a load of them all would report it; nil if they can.
    func refusal() -> LoadError? {
        var problems: [String: [LoadError.Problem]] = [:]
        for path in troubled { problems[path] = contents[path]?.problems ?? [] }
        for key in duplicated.sorted() {
            guard let files = definers[key], let first = files.first else { continue }
            for path in files.dropFirst() {
                // As one load of all the files words it (a file's own duplicates are its own problems).
                let message: String
                if case .node = key { message = "defined more than once" } else { message = "also defined in \(first)" }
                problems[path, default: []].append(LoadError.Problem(source: path, object: key.description, message: message))
            }
        }
        if !problems.isEmpty {
            return LoadError(problems: problems.keys.sorted().flatMap { problems[$0]! })
        }
        if !emptyFiles.isEmpty {
            return LoadError(problems: emptyFiles.sorted().map {
                LoadError.Problem(source: $0, message: "has no objects (empty, or cut short while being written); the last good state stays")
            })
        }
        return nil
    }

    /// The object the files define now under `key`.
    private func current(_ key: ManifestKey) -> ManifestObject? {
        guard let path = definers[key]?.first else { return nil }
        return contents[path]?.objects[key]
    }

    /// The Services handed out; how many of them the files no longer define; how many they define now.
    var serviceCounts: (handedOut: Int, removed: Int, now: Int) {
        var removed = 0
        var added = 0
        for key in touched {
            guard case .service = key else { continue }
            switch (handedOut[key] != nil, current(key) != nil) {
            case (true, false): removed += 1
            case (false, true): added += 1
            default: break
            }
        }
        return (handedOutServices, removed, handedOutServices - removed + added)
    }

    /// What changed since the objects were last handed out; from now on they count as handed out.
    mutating func handOut() -> ClusterChanges {
        var changes = ClusterChanges()
        for key in touched {
            let object = current(key)
            let before = handedOut[key]
            guard object != before else { continue }
            handedOut[key] = object
            switch key {
            case .service(let name):
                if case .service(let service)? = object { changes.services[name] = .some(service) } else { changes.services[name] = .some(nil) }
                handedOutServices += (object == nil ? 0 : 1) - (before == nil ? 0 : 1)
            case .endpointSlice(let name):
                if case .endpointSlice(let slice)? = object {
                    changes.endpointSlices[name] = .some(slice)
                } else {
                    changes.endpointSlices[name] = .some(nil)
                }
            case .node(let name):
                if case .node(let node)? = object { changes.nodes[name] = .some(node) } else { changes.nodes[name] = .some(nil) }
            }
        }
        touched = []
        return changes
    }
}
