import Foundation

/// Why a set of manifests was rejected: every problem found, each naming its file and object.
public struct LoadError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Problem: Hashable, Sendable, CustomStringConvertible {
        /// The file path (or other source name) the caller passed in.
        public var source: String
        /// `Service default/web`, or `Service at line 12` when the object has no usable name.
        public var object: String?
        /// What is wrong, starting with the field path when there is one.
        public var message: String

        public init(source: String, object: String? = nil, message: String) {
            self.source = source
            self.object = object
            self.message = message
        }

        /// `web.yaml: Service default/web: spec.ports[0].port: 70000 is out of range 1-65535`
        public var description: String {
            // One line each: a YAML parser's message quotes the bad line and marks it on the next.
            [source, object, message].compactMap { $0 }.joined(separator: ": ")
                .split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " | ")
        }
    }

    public var problems: [Problem]

    public init(problems: [Problem]) {
        self.problems = problems
    }

    /// One line, so that a log record stays one line.
    public var description: String { problems.map(\.description).joined(separator: "; ") }
}
