import HostNetwork
import IPVS

/// Which UDP conntrack entries a sync makes stale. UDP has no end of connection: a client that
/// keeps sending keeps its entry alive, and the entry keeps steering its datagrams to a real server
/// that is gone, or, for a virtual server that had none, to the node itself. kube-proxy deletes
/// them; so does kipvs, after the virtual servers are in place.
public enum ConntrackCleanup {
    /// One filter per UDP virtual server that lost a real server, got its first one, or went away.
    /// Each keeps the flows its current real servers answer (draining ones included) and deletes
    /// the rest. Unchanged virtual servers and ones that only gained real servers give none.
    /// Sorted by virtual server.
    public static func filters(from previous: DesiredState, to current: DesiredState) -> [ConntrackFilter] {
        var filters: [ConntrackFilter] = []
        for key in Set(previous.virtualServers.keys).union(current.virtualServers.keys).sorted() {
            guard case .service(.udp, let address, let port) = key else { continue }
            let before = realServers(of: key, in: previous)
            // A virtual server that went away (its Service is gone) keeps nothing.
            let now = realServers(of: key, in: current)
            let gone = current.virtualServers[key] == nil
            let lostOne = !before.isSubset(of: now)
            let firstOnes = before.isEmpty && !now.isEmpty
            if gone || lostOne || firstOnes {
                filters.append(ConntrackFilter(protocol: .udp, originalDestination: address, originalPort: port,
                                               keepReplySources: now))
            }
        }
        return filters
    }

    private static func realServers(of key: VirtualServerKey, in state: DesiredState) -> Set<RealServerKey> {
        state.virtualServers[key].map { Set($0.realServers.keys) } ?? []
    }
}
