#!/usr/bin/env bash
# Virtual servers made by someone else survive kipvs' syncs, including syncs that delete kipvs'
# own, and `kipvs cleanup` removes kipvs' virtual servers and kipvs0 but leaves theirs.
source "$(dirname "$0")/pods.sh"

readonly NODE_IP=172.20.0.10

# Not kipvs': an address it does not manage, a node address on a port outside the NodePort
# range, and a firewall mark.
add_foreign() {
  ipvsadm -A -t 192.0.2.10:9999 -s wlc
  ipvsadm -a -t 192.0.2.10:9999 -r 192.0.2.20:9999 -m -w 3
  ipvsadm -A -u 192.0.2.10:53 -s rr
  ipvsadm -A -t "$NODE_IP:8080" -s rr
  ipvsadm -a -t "$NODE_IP:8080" -r 10.244.9.9:80 -m
  ipvsadm -A -f 7 -s rr
  rules >"$SCRATCH/foreign"
}

# cluster_yaml [with-nodeport]
cluster_yaml() {
  cat <<YAML
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.96.0.60
  ports: [{port: 80, targetPort: 8080}]
$(slice_yaml web ":8080" 10.244.1.2)
YAML
  [[ ${1-} == with-nodeport ]] || return 0
  cat <<YAML
---
apiVersion: v1
kind: Service
metadata: {name: public, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.0.61
  ports: [{port: 80, targetPort: 8080, nodePort: 30090}]
$(slice_yaml public ":8080" 10.244.1.3)
YAML
}

# expect_foreign_intact WHEN
expect_foreign_intact() {
  rules | grep -Fxf "$SCRATCH/foreign" >"$SCRATCH/still" || true
  assert_same_file "$SCRATCH/foreign" "$SCRATCH/still" "foreign virtual servers $1"
}

node_address_add "$NODE_IP"
add_foreign
cluster_yaml with-nodeport | manifest_write
agent_start --log-level debug --ipvs-sync-period 1s
wait_rule "-a -t $NODE_IP:30090 -r 10.244.1.3:8080 -m -w 1"
wait_rule "-a -t 10.96.0.60:80 -r 10.244.1.2:8080 -m -w 1"
wait_syncs 3
expect_foreign_intact "after full resyncs"

# Deleting the NodePort Service makes kipvs delete virtual servers on the node address.
cluster_yaml | manifest_write
wait_no_text "$NODE_IP:30090"
wait_no_text "10.96.0.61:80"
wait_syncs 2
expect_foreign_intact "after kipvs deleted its own"

agent_stop
out=$("$KIPVS" cleanup --hostname-override "$NODE_NAME") || fail "kipvs cleanup exited non-zero: $out"
echo "cleanup: $out"
rules >"$SCRATCH/left"
assert_same_file "$SCRATCH/foreign" "$SCRATCH/left" "table after kipvs cleanup"
if ip link show kipvs0 >/dev/null 2>&1; then fail "kipvs0 still exists after cleanup"; fi
assert_contains "$(ip -o addr show dev node0)" "inet $NODE_IP/32" "the node's address after cleanup"
out=$("$KIPVS" cleanup --hostname-override "$NODE_NAME") || fail "a second kipvs cleanup failed: $out"
