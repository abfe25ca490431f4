/// The IPVS schedulers the kernel ships (`ip_vs_<name>` modules).
public enum IPVSScheduler: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case roundRobin = "rr"
    case weightedRoundRobin = "wrr"
    case leastConnection = "lc"
    case weightedLeastConnection = "wlc"
    case localityBasedLeastConnection = "lblc"
    case localityBasedLeastConnectionWithReplication = "lblcr"
    case destinationHashing = "dh"
    case sourceHashing = "sh"
    case shortestExpectedDelay = "sed"
    case neverQueue = "nq"
    case weightedFailover = "fo"
    case weightedOverflow = "ovf"
    case maglevHashing = "mh"
    case weightedRandomTwoChoices = "twos"

    public var description: String { rawValue }
}
