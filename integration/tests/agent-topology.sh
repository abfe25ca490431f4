#!/usr/bin/env bash
# Topology: with the node's Node object in the manifest (its zone label), hinted endpoints are
# used only where their hints say; a Service's trafficDistribution without hints has kipvs derive
# them from the endpoints' zone and node. Checked by which pods answer and in `ipvsadm -Sn`.
source "$(dirname "$0")/pods.sh"

readonly VIP=10.96.0.60 NEAR_VIP=10.96.0.61

# node_yaml ZONE: this node's Node object.
node_yaml() {
  cat <<YAML
---
apiVersion: v1
kind: Node
metadata:
  name: $NODE_NAME
  labels: {topology.kubernetes.io/zone: $1}
YAML
}

# service_yaml NAME CLUSTER_IP [TRAFFIC_DISTRIBUTION]
service_yaml() {
  cat <<YAML
---
apiVersion: v1
kind: Service
metadata: {name: $1, namespace: default}
spec:
  clusterIP: $2
  ports: [{port: 80, targetPort: 8080}]
YAML
  if [[ -n ${3-} ]]; then echo "  trafficDistribution: $3"; fi
}

# hinted_slice: web's endpoints, pod-a and pod-c hinted for zone-a, pod-b for zone-b.
hinted_slice() {
  cat <<YAML
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-x1, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: "", port: 8080, protocol: TCP}]
endpoints:
- {addresses: [$(pod_ip pod-a)], nodeName: node-2, zone: zone-a, hints: {forZones: [{name: zone-a}]}}
- {addresses: [$(pod_ip pod-b)], nodeName: node-3, zone: zone-b, hints: {forZones: [{name: zone-b}]}}
- {addresses: [$(pod_ip pod-c)], nodeName: node-4, zone: zone-a, hints: {forZones: [{name: zone-a}]}}
YAML
}

# unhinted_slice: near's endpoints with their zone and node, no hints (no EndpointSlice controller).
unhinted_slice() {
  cat <<YAML
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: near-x1, namespace: default, labels: {kubernetes.io/service-name: near}}
addressType: IPv4
ports: [{name: "", port: 8080, protocol: TCP}]
endpoints:
- {addresses: [$(pod_ip pod-a)], nodeName: node-2, zone: zone-a}
- {addresses: [$(pod_ip pod-b)], nodeName: $NODE_NAME, zone: zone-b}
- {addresses: [$(pod_ip pod-c)], nodeName: node-4, zone: zone-a}
YAML
}

# write_cluster ZONE NEAR_DISTRIBUTION
write_cluster() {
  {
    node_yaml "$1"
    service_yaml web "$VIP"
    hinted_slice
    service_yaml near "$NEAR_VIP" "$2"
    unhinted_slice
  } | manifest_write
}

# real_servers VIP: the addresses of VIP's real servers that take new connections, sorted,
# space-separated. One left with connections (TIME_WAIT counts for two minutes) drains at weight 0.
real_servers() {
  ipvsadm -Sn | awk -v vs="$1:80" '$1 == "-a" && $3 == vs && $NF != "0" { sub(/:8080$/, "", $5); print $5 }' |
    sort | paste -sd' ' -
}

# expect_servers VIP POD...: waits until VIP's real servers are exactly these pods.
expect_servers() {
  local vip=$1
  shift
  local want pod
  want=$(for pod in "$@"; do pod_ip "$pod"; done | sort | paste -sd' ' -)
  wait_for 20 "real servers of $vip = $*" servers_are "$vip" "$want"
}

servers_are() {
  agent_alive || fail "kipvs exited"
  [[ $(real_servers "$1") == "$2" ]]
}

# check_traffic VIP POD...: new connections reach exactly these pods.
check_traffic() {
  local vip=$1 answers
  shift
  answers=$(http_get client "$vip" 80 $((4 * $#)))
  echo "$vip: $(tally <<<"$answers")"
  assert_eq "$(printf '%s\n' "$@" | sort)" "$(distinct <<<"$answers")" "pods that answered $vip"
}

pod_add pod-a 1
pod_add pod-b 2
pod_add pod-c 3
client_add client 1
write_cluster zone-a PreferSameZone
agent_start
pods_wait_ready

# Zone hints against the Node's label; derived zone hints for trafficDistribution.
expect_servers "$VIP" pod-a pod-c
check_traffic "$VIP" pod-a pod-c
expect_servers "$NEAR_VIP" pod-a pod-c
check_traffic "$NEAR_VIP" pod-a pod-c

# The Node moves to zone-b: the other hinted pod.
write_cluster zone-b PreferSameZone
expect_servers "$VIP" pod-b
check_traffic "$VIP" pod-b
expect_servers "$NEAR_VIP" pod-b

# PreferSameNode: the endpoint on this node only; PreferClose is PreferSameZone.
write_cluster zone-a PreferSameNode
expect_servers "$NEAR_VIP" pod-b
check_traffic "$NEAR_VIP" pod-b
write_cluster zone-a PreferClose
expect_servers "$NEAR_VIP" pod-a pod-c

# Without the Node object the node has no zone: every endpoint.
{
  service_yaml web "$VIP"
  hinted_slice
} | manifest_write
expect_servers "$VIP" pod-a pod-b pod-c
check_traffic "$VIP" pod-a pod-b pod-c
