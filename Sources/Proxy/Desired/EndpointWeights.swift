import IPVS

/// `kipvs.io/endpoint-weights: "10.244.1.5=3,web-7d4b9-x2x=0"`: IPVS weights for a Service's
/// endpoints, named by address or by pod (`targetRef.name`), since EndpointSlices carry none.
/// Unlisted endpoints keep weight 1; weight 0 drains (existing connections stay, new ones go
/// elsewhere). Weights matter to the weighted schedulers (wrr, wlc, mh, ...).
struct EndpointWeights: Hashable {
    /// ipvsadm's limit.
    static let maximum = 65535

    private(set) var byAddress: [IPAddress: Int32] = [:]
    private(set) var byPod: [String: Int32] = [:]

    /// Why an annotation cannot be used: the entry at fault.
    struct Problem: Error, Hashable, CustomStringConvertible {
        var description: String
    }

    init() {}

    /// Comma-separated `NAME=WEIGHT` entries, spaces around them allowed; an address is an
    /// endpoint address, anything else a pod name.
    init(parsing text: String) throws(Problem) {
        for raw in text.split(separator: ",", omittingEmptySubsequences: false) {
            let entry = raw.trimmingCharacters(in: .whitespaces)
            if entry.isEmpty { continue }  // "a=1," is fine
            let parts = entry.split(separator: "=", omittingEmptySubsequences: false)
            guard parts.count == 2 else { throw Problem(description: "entry \(Excerpt.quoted(entry)) is not NAME=WEIGHT") }
            let name = parts[0].trimmingCharacters(in: .whitespaces)
            let weightText = parts[1].trimmingCharacters(in: .whitespaces)
            guard let weight = Int(weightText), (0...Self.maximum).contains(weight) else {
                throw Problem(description: "entry \(Excerpt.quoted(entry)): the weight must be a number from 0 to \(Self.maximum)")
            }
            if let address = IPAddress(name) {
                guard byAddress.updateValue(Int32(weight), forKey: address) == nil else {
                    throw Problem(description: "entry \(Excerpt.quoted(entry)): \(address) is listed twice")
                }
            } else {
                guard NameRule.dns1123Subdomain.problem(with: name) == nil else {
                    throw Problem(description: "entry \(Excerpt.quoted(entry)): \(Excerpt.quoted(name)) is neither an IP address nor a pod name")
                }
                guard byPod.updateValue(Int32(weight), forKey: name) == nil else {
                    throw Problem(description: "entry \(Excerpt.quoted(entry)): \(name) is listed twice")
                }
            }
        }
    }

    var isEmpty: Bool { byAddress.isEmpty && byPod.isEmpty }

    /// The address's entry first, then the pod's; 1 when neither is listed.
    func weight(of candidate: EndpointCandidate) -> Int32 {
        byAddress[candidate.key.address] ?? candidate.podName.flatMap { byPod[$0] } ?? 1
    }
}

extension WellKnown {
    /// Per-Service endpoint weights (see `EndpointWeights`).
    public static let endpointWeightsAnnotation = "kipvs.io/endpoint-weights"
}

extension Service {
    /// The weights of the annotation, or none with the reason to warn about. A bad entry voids
    /// the whole annotation: half of an operator's intent is no better than none.
    var endpointWeights: (weights: EndpointWeights, problem: String?) {
        guard let text = metadata.annotations[WellKnown.endpointWeightsAnnotation] else { return (EndpointWeights(), nil) }
        do {
            return (try EndpointWeights(parsing: text), nil)
        } catch {
            return (EndpointWeights(), "annotation \(WellKnown.endpointWeightsAnnotation): \(error); the annotation is ignored")
        }
    }
}

extension Array where Element == EndpointCandidate {
    func weighted(by weights: EndpointWeights) -> [EndpointCandidate] {
        if weights.isEmpty { return self }
        return map { candidate in
            var weighted = candidate
            weighted.weight = weights.weight(of: candidate)
            return weighted
        }
    }
}
