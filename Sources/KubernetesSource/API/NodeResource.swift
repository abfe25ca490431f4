import Foundation
import Proxy

extension APIResource where Object == ClusterNode {
    /// The one Node named `name`, selected by the API server: the agent's own, for its zone and
    /// whether it is going away. Other nodes are never listed.
    public static func node(named name: String) -> Self {
        // Node names are DNS subdomains; the selector's `=` still needs escaping in a query.
        let selector = "metadata.name=\(name)".addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(.init(charactersIn: "-._")))
            ?? name
        return APIResource(name: "nodes", path: "/api/v1/nodes?fieldSelector=\(selector)") { object throws(LoadError) in
            try ClusterNode(apiObject: object, source: "nodes")
        }
    }
}
