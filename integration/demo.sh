#!/usr/bin/env bash
# kipvs end to end, inside the UML guest (`make demo` runs `integration/uml.sh integration/demo.sh`):
# three fake pods behind the Services of examples/demo.yaml, the traffic each pod gets, then the
# Deployment scaled down by one pod while kipvs runs.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
export KIPVS=${KIPVS:-$REPO/.build/debug/kipvs}
readonly EXAMPLE=$REPO/examples/demo.yaml
readonly NODE_IP=172.20.0.10
# shellcheck source=tests/pods.sh
source "$REPO/integration/tests/pods.sh"

heading() {
  printf '\n== %s\n' "$*"
}

# show COMMAND...: prints the command, then its output indented.
show() {
  echo "\$ $*"
  "$@" 2>&1 | sed 's/^/  /'
}

start_pods() {
  heading "Pods, clients and the node"
  node_address_add "$NODE_IP"
  pod_add pod-a 1
  pod_add pod-b 2
  pod_add pod-c 3
  client_add client-1 1
  client_add client-2 2
  client_add client-3 3
  pods_wait_ready
  echo "pods:    pod-a $(pod_ip pod-a), pod-b $(pod_ip pod-b), pod-c $(pod_ip pod-c) (each answers \"NAME PORT\")"
  echo "clients: client-1 10.99.1.2, client-2 10.99.2.2, client-3 10.99.3.2 (outside the node)"
  echo "node:    $NODE_IP"
}

start_agent() {
  heading "kipvs run on examples/demo.yaml"
  manifest_write <"$EXAMPLE"
  # One NodePort address keeps the listing short; without the flag every node address serves.
  local flags=(--nodeport-addresses "$NODE_IP/32")
  echo "\$ kipvs run --source file:demo.yaml --hostname-override $NODE_NAME ${flags[*]} &"
  agent_start "${flags[@]}"
  wait_rule "-a -t 10.96.0.12:80 -r $(pod_ip pod-c):8080 -m -w 1"
  wait_rule "-a -t $NODE_IP:30080 -r $(pod_ip pod-c):8080 -m -w 1"
  show ip -br -4 addr show dev kipvs0
  show ipvsadm -Ln
}

# distribution WHAT CLIENT ADDRESS PORT
distribution() {
  heading "$1: 30 requests from $2 to $3:$4"
  http_get "$2" "$3" "$4" 30 | tally
}

affinity() {
  heading "web-sticky (ClientIP affinity): 5 requests from each client to 10.96.0.12:80"
  local client
  for client in client-1 client-2 client-3; do
    echo "$client: $(http_get "$client" 10.96.0.12 80 5 | tally)"
  done
}

scale_down() {
  heading "Scale down: pod-c leaves every EndpointSlice"
  echo "\$ grep -v 'name: pod-c}' examples/demo.yaml > demo.yaml"
  grep -v 'name: pod-c}' "$EXAMPLE" | manifest_write
  wait_rule "-a -t 10.96.0.10:80 -r $(pod_ip pod-c):8080 -m -w 0"
  echo "pod-c drops to weight 0: no new connections; kipvs deletes it once its old ones are gone."
  show ipvsadm -Ln -t 10.96.0.10:80
}

main() {
  start_pods
  start_agent
  distribution "web (ClusterIP, rr)" client-1 10.96.0.10 80
  distribution "web-public (NodePort)" client-2 "$NODE_IP" 30080
  affinity
  scale_down
  distribution "web after the scale-down" client-1 10.96.0.10 80
  heading "Done"
}

main
