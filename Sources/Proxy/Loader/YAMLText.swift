import Foundation
import Yams

/// Bounds on the text kipvs parses, from manifest files and from the API server. Fixed: a node
/// agent has no business reading more, and no flag should make it.
public enum TextLimits {
    /// One manifest file: `kubectl get svc,endpointslices -A -o yaml` for 10,000s of Services is
    /// a few tens of MiB.
    public static let fileBytes = 64 << 20
    /// One list page from the API server (500 objects).
    public static let listBytes = 64 << 20
    /// One object or watch event: the API server stores nothing over 1.5 MiB (etcd's request limit).
    public static let objectBytes = 16 << 20
    /// YAML aliases (`*name`) in one text. Kubernetes never writes them; a hand-written manifest
    /// may share a few labels with them.
    public static let aliases = 16
    /// Only a text this small may use aliases: each one costs a read of the text to find it.
    public static let aliasTextBytes = 1 << 20
    /// Nodes all aliases together may add when expanded.
    public static let aliasExpansion = 10_000
    /// Nesting of mappings and lists: a Service with its managedFields is about a dozen deep.
    public static let depth = 100
    /// The parser's stack: libyaml stops at 1,000 levels, and Yams recurses once per level.
    static let parserStackBytes = 64 << 20
}

/// Why a text could not be parsed: one line, quoting at most `Excerpt.limit` characters of it.
public struct TextError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// YAML (and so JSON) documents, parsed within `TextLimits`.
public enum YAMLText {
    /// Each document of `text`, handed to `body` on a thread whose stack holds the parser's
    /// deepest nesting; nodes must not outlive `body`. Stops at the first problem.
    static func forEachDocument(in text: String, _ body: (Node) throws -> Void) throws {
        try onParserThread {
            try checkAliases(text)
            var documents = try compose(text)
            while let document = documents.next() {
                if let depth = deeperThanLimit(document) {
                    throw TextError("nested deeper than \(TextLimits.depth) levels (at line \(depth))")
                }
                try body(document)
            }
            if let error = documents.error { throw TextError(describe(error, in: text)) }
        }
    }

    /// The one document of `text` (an API object or response), checked as `forEachDocument` does.
    public static func document(in text: String) throws(TextError) -> Node? {
        var node: Node?
        do {
            try forEachDocument(in: text) { document in
                guard node == nil else { throw TextError("more than one document") }
                node = document
            }
        } catch let error as TextError {
            throw error
        } catch {
            throw TextError(Excerpt.text("\(error)"))
        }
        return node
    }

    private static func compose(_ text: String) throws(TextError) -> YamlSequence<Node> {
        do {
            // Fields are read by their text and style (see Field), never by resolved tag: the basic
            // resolver skips the per-scalar pattern matching that dominates large files.
            return try Yams.compose_all(yaml: text, .basic)
        } catch {
            throw TextError(describe(error, in: text))
        }
    }

    // MARK: Aliases

    /// Refuses texts whose aliases are many or expand to much. Each alias is found by libyaml
    /// itself: in a copy of the text every anchor (`&a`) is made a tag (`!a`), which keeps the
    /// structure, so each alias is undefined there and the parser reports where it is; it is then
    /// made a plain scalar (`*a` → `xa`) and the copy read again. Once none is left, the copy's
    /// tree tells how many nodes each anchor holds, and so what the aliases would add.
    private static func checkAliases(_ text: String) throws {
        var probe = Array(text.utf8)
        guard makeAnchorsTags(&probe) else { return }  // no anchor: an alias is an error of its own
        var aliases: [Position: String] = [:]
        while true {
            do {
                var documents = try Yams.compose_all(yaml: String(decoding: probe, as: UTF8.self), .basic)
                var added = 0
                while let document = documents.next() {
                    var anchors: [String: Int] = [:]
                    let (expanded, unique) = size(of: document, aliases: aliases, anchors: &anchors)
                    added += expanded - unique
                    if added > TextLimits.aliasExpansion {
                        throw TextError("YAML aliases expand to more than \(TextLimits.aliasExpansion) further nodes")
                    }
                }
                if let error = documents.error { throw error }
                return
            } catch YamlError.composer(_, let problem, let mark, _) where problem == "found undefined alias" {
                guard text.utf8.count <= TextLimits.aliasTextBytes else {
                    throw TextError("line \(mark.line): YAML aliases are read only in texts up to \(TextLimits.aliasTextBytes >> 20) MiB")
                }
                guard aliases.count < TextLimits.aliases else {
                    throw TextError("line \(mark.line): more than \(TextLimits.aliases) YAML aliases")
                }
                guard let offset = byteOffset(of: mark, in: probe), probe[offset] == UInt8(ascii: "*") else {
                    throw TextError("line \(mark.line) column \(mark.column): a YAML alias that cannot be checked")
                }
                probe[offset] = UInt8(ascii: "x")
                let name = probe[(offset + 1)...].prefix(while: isAnchorCharacter)
                aliases[Position(mark)] = String(decoding: name, as: UTF8.self)
            } catch let error as TextError {
                throw error
            } catch {
                throw TextError(describe(error, in: text))
            }
        }
    }

    /// `&name` → `!name` wherever `&` is followed by a character libyaml allows in anchor names;
    /// false when there is none. Elsewhere (in quoted text) the change is harmless to a probe.
    private static func makeAnchorsTags(_ bytes: inout [UInt8]) -> Bool {
        var found = false
        for i in bytes.indices.dropLast() where bytes[i] == UInt8(ascii: "&") && isAnchorCharacter(bytes[i + 1]) {
            bytes[i] = UInt8(ascii: "!")
            found = true
        }
        return found
    }

    /// libyaml's anchor and alias names: letters, digits, `_` and `-`.
    private static func isAnchorCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "_"), UInt8(ascii: "-"): true
        default: false
        }
    }

    /// The node's size with every alias expanded, and without; `anchors` gathers each anchor's
    /// expanded size as it is defined (after its node, as libyaml registers it).
    private static func size(of node: Node, aliases: [Position: String], anchors: inout [String: Int]) -> (Int, Int) {
        var expanded = 1
        var unique = 1
        switch node {
        case .scalar(let scalar):
            if let mark = scalar.mark, let name = aliases[Position(mark)] { expanded = anchors[name] ?? 1 }
        case .mapping(let mapping):
            for (key, value) in mapping {
                for child in [key, value] {
                    let (e, u) = size(of: child, aliases: aliases, anchors: &anchors)
                    expanded += e
                    unique += u
                }
            }
        case .sequence(let sequence):
            for child in sequence {
                let (e, u) = size(of: child, aliases: aliases, anchors: &anchors)
                expanded += e
                unique += u
            }
        case .alias:
            break
        }
        let tag = node.tag.rawValue
        if tag.hasPrefix("!"), !tag.hasPrefix("!!") { anchors[String(tag.dropFirst())] = expanded }
        return (expanded, unique)
    }

    /// Where libyaml's 1-based line and column (in characters) fall in `bytes`; nil past the end.
    private static func byteOffset(of mark: Mark, in bytes: [UInt8]) -> Int? {
        var offset = 0
        for _ in 1..<max(mark.line, 1) {
            guard let newline = bytes[offset...].firstIndex(of: UInt8(ascii: "\n")) else { return nil }
            offset = newline + 1
        }
        for _ in 1..<max(mark.column, 1) {
            guard offset < bytes.count else { return nil }
            offset += 1
            while offset < bytes.count, bytes[offset] & 0xC0 == 0x80 { offset += 1 }  // continuation bytes
        }
        return offset < bytes.count ? offset : nil
    }

    // MARK: Depth

    /// The line of a node nested deeper than the limit, if there is one. Aliases count as they
    /// expand, which `checkAliases` has bounded.
    private static func deeperThanLimit(_ node: Node, depth: Int = 1) -> Int? {
        if depth > TextLimits.depth { return node.mark?.line ?? 0 }
        switch node {
        case .mapping(let mapping):
            for (key, value) in mapping {
                if let line = deeperThanLimit(key, depth: depth + 1) ?? deeperThanLimit(value, depth: depth + 1) { return line }
            }
        case .sequence(let sequence):
            for child in sequence {
                if let line = deeperThanLimit(child, depth: depth + 1) { return line }
            }
        case .scalar, .alias:
            break
        }
        return nil
    }

    // MARK: Messages

    /// A parser error in one line: that it is one, where, what, and at most `Excerpt.limit` characters of the
    /// line it is on. (Yams' own description quotes the whole line, however long.)
    static func describe(_ error: any Error, in text: String) -> String {
        guard let error = error as? YamlError else { return Excerpt.text("\(error)") }
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            let what = [context?.text, problem].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ": ")
            return "invalid YAML or JSON: line \(mark.line) column \(mark.column): \(Excerpt.text(what)): \(near(mark, in: text))"
        case .reader(let problem, let offset, let value, _):
            return "invalid YAML or JSON: byte \(offset ?? 0): \(Excerpt.text(problem))\(value >= 0 ? " (0x\(String(value, radix: 16)))" : "")"
        case .duplicatedKeysInMapping(let duplicates, let context):
            return "invalid YAML or JSON: line \(context.mark.line): duplicate keys \(duplicates.prefix(5).map { Excerpt.quoted($0, limit: 40) }.joined(separator: ", "))"
        case .dataCouldNotBeDecoded:
            return "not UTF-8 text"
        default:
            return Excerpt.text("\(error)")
        }
    }

    /// The text around `mark`: its line, or a window of it around the column.
    private static func near(_ mark: Mark, in text: String) -> String {
        let bytes = text.utf8
        var start = bytes.startIndex
        for _ in 1..<max(mark.line, 1) {
            guard let newline = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) else { return "\"\"" }
            start = bytes.index(after: newline)
        }
        let end = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.endIndex
        let line = bytes[start..<end]
        let half = Excerpt.limit / 2
        // Columns count characters; bytes are close enough to centre a window on.
        let from = line.index(line.startIndex, offsetBy: max(0, min(mark.column - 1 - half, line.count - Excerpt.limit)), limitedBy: line.endIndex) ?? line.startIndex
        let window = line[from...].prefix(Excerpt.limit)
        let prefix = from > line.startIndex ? "…" : ""
        let suffix = window.endIndex < line.endIndex ? "…" : ""
        return "\(prefix)\"\(Excerpt.bytes(window, limit: Excerpt.limit))\"\(suffix)"
    }

    // MARK: The parser's thread

    /// Runs `body` on a parser thread of its own and frees the caller's thread meanwhile: for
    /// callers in Swift concurrency, whose few threads the sync loop and the endpoints share.
    public static func offloaded<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                Thread.current.threadDictionary[parserThreadKey] = true
                continuation.resume(with: Result { try body() })
            }
            thread.stackSize = TextLimits.parserStackBytes
            thread.start()
        }
    }

    private static let parserThreadKey = "kipvs.parser-thread"

    /// Runs `body` on a new thread with a stack deep enough for libyaml's own nesting limit,
    /// and waits for it (a document nested 999 deep overflows an ordinary thread's stack); on
    /// such a thread already, runs it in place.
    static func onParserThread<T>(_ body: () throws -> T) throws -> T {
        if Thread.current.threadDictionary[parserThreadKey] != nil { return try body() }
        return try withoutActuallyEscaping(body) { body in
            let box = ParserWork(body)
            let done = DispatchSemaphore(value: 0)
            let thread = Thread {
                Thread.current.threadDictionary[parserThreadKey] = true
                box.run()
                done.signal()
            }
            thread.stackSize = TextLimits.parserStackBytes
            thread.start()
            done.wait()
            return try box.result!.get()
        }
    }
}

/// A place in the text, as libyaml counts it.
private struct Position: Hashable {
    let line: Int
    let column: Int
    init(_ mark: Mark) { (line, column) = (mark.line, mark.column) }
}

/// Hands a closure to the parser's thread and its result back; only one thread uses it at a time.
/// The closure is dropped as soon as it has run: it must not outlive `withoutActuallyEscaping`.
private final class ParserWork<T>: @unchecked Sendable {
    private var body: (() throws -> T)?
    var result: Result<T, any Error>?

    init(_ body: @escaping () throws -> T) { self.body = body }

    func run() {
        guard let body else { return }
        self.body = nil
        result = Result { try body() }
    }
}
