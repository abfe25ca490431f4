#!/usr/bin/env bash
# A NodePort Service answers on the node's own addresses, from a client outside the node, and
# on none of the addresses kipvs binds for cluster IPs or on loopback.
source "$(dirname "$0")/pods.sh"

readonly NODE_IP=172.20.0.10 CLUSTER_IP=10.96.0.20 NODE_PORT=30080

setup() {
  node_address_add "$NODE_IP"
  pod_add pod-a 1
  pod_add pod-b 2
  client_add external 1
  manifest_write <<YAML
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: NodePort
  clusterIP: $CLUSTER_IP
  ports: [{port: 80, targetPort: 8080, nodePort: $NODE_PORT}]
$(slice_yaml web ":8080" pod-a pod-b)
YAML
  agent_start
  pods_wait_ready
  wait_rule "-a -t $NODE_IP:$NODE_PORT -r $(pod_ip pod-b):8080 -m -w 1"
}

# expect_answers CLIENT ADDRESS PORT: four requests, every one answered, both pods used.
expect_answers() {
  local answers
  answers=$(http_get "$1" "$2" "$3" 4)
  echo "$2:$3 from $1: $(tally <<<"$answers")"
  [[ $(distinct <<<"$answers") == $'pod-a\npod-b' ]] || fail "$2:$3 from $1: $(tally <<<"$answers")"
}

check_virtual_servers() {
  local table
  table=$(rules)
  # The client's gateway is an address of the node too.
  assert_contains "$table" "^-A -t 10\.99\.1\.1:$NODE_PORT " "NodePort on every node address"
  if grep -qE -- "^-A -t ($CLUSTER_IP|127\.0\.0\.1):$NODE_PORT " <<<"$table"; then
    fail "NodePort on a cluster IP or loopback: $table"
  fi
}

setup
expect_answers external "$NODE_IP" "$NODE_PORT"
expect_answers external 10.99.1.1 "$NODE_PORT"
expect_answers external "$CLUSTER_IP" 80
check_virtual_servers
