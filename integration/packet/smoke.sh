#!/usr/bin/env bash
# The topology comes up and carries traffic: pods reach each other across nodes and keep their
# addresses; nf_tables for IP and IPVS work in this kernel; a ClusterIP that `kipvs run --once`
# programs on node A takes a pod on A to another pod on A, which sees the client pod's address.
source "$(dirname "$0")/topology.sh"

readonly CLUSTER_IP=10.96.0.10

# expect WHAT EXPECTED ACTUAL
expect() {
  [[ $2 == "$3" ]] || fail "$1: expected '$2', got '$3'"
  echo "ok $1: $3"
}

topology_up
serve a2 8080
serve b1 8080
expect "pod a1 -> pod b1 across nodes" "b1 $POD_A1" "$(peer a1 tcp "$POD_B1" 8080)"
expect "pod a1 -> pod b1 over IPv6" "b1 $POD_A16" "$(peer a1 tcp "$POD_B16" 8080)"
expect "client -> pod a2 over UDP, routed by node A" "a2 $CLIENT" "$(in_ns client ip route add 10.244.1.0/24 via "$NODE_A" &&
  peer client udp "$POD_A2" 8080)"

nft add table inet smoke || fail "nft cannot add an inet table"
nft delete table inet smoke
ipvsadm -Ln >/dev/null || fail "ipvsadm cannot read the IPVS table"

service_yaml web "  clusterIP: $CLUSTER_IP" "" TCP:80:8080,UDP:80:8080 a2 | manifest_write web
agent_once a
expect "pod a1 -> ClusterIP -> pod a2 (TCP)" "a2 $POD_A1" "$(peer a1 tcp "$CLUSTER_IP" 80)"
expect "pod a1 -> ClusterIP -> pod a2 (UDP)" "a2 $POD_A1" "$(peer a1 udp "$CLUSTER_IP" 80)"
