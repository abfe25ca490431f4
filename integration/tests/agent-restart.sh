#!/usr/bin/env bash
# Restarting kipvs on unchanged input writes nothing to the kernel: counters and open
# connections survive (a deleted and re-added server would restart from zero), `kipvs plan`
# has nothing to do, and no sync logs "synced" (which kipvs logs only after a change).
source "$(dirname "$0")/pods.sh"

readonly VIP=10.96.0.70 NODE_IP=172.20.0.10

setup() {
  node_address_add "$NODE_IP"
  pod_add pod-a 1
  pod_add pod-b 2
  client_add client 1
  manifest_write <<YAML
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: NodePort
  clusterIP: $VIP
  sessionAffinity: ClientIP
  ports: [{name: http, port: 80, targetPort: 8080, nodePort: 30100}]
$(slice_yaml web "http:8080" pod-a pod-b)
---
apiVersion: v1
kind: Service
metadata: {name: dns, namespace: default}
spec:
  clusterIP: 10.96.0.71
  ports: [{name: dns, port: 53, protocol: UDP}]
$(slice_yaml dns "dns:5353:UDP" pod-a)
YAML
  "$KIPVS" run --once --source "file:$MANIFEST" --hostname-override "$NODE_NAME" >>"$KIPVS_LOG" 2>&1 ||
    fail "first kipvs run --once exited non-zero"
  (($(log_count "$WRITING_SYNC_LINE") == 1)) || fail "the first run did not log one writing sync"
  pods_wait_ready
}

# snapshot: the table with its counters and connections, and the bound addresses.
snapshot() {
  ipvsadm -Ln --stats | sort
  ipvsadm -Ln | sort
  ip -o addr show dev kipvs0 | awk '{ print $3, $4 }' | sort
}

# settled_snapshot FILE: the kernel folds traffic into the counters it reports every two
# seconds (its rate estimator's period), so a snapshot counts once it repeats after that long.
settled_snapshot() {
  local tries=0
  snapshot >"$1"
  while ((tries++ < 5)); do
    sleep 2.5
    snapshot >"$1.again"
    cmp -s "$1" "$1.again" && return
    mv "$1.again" "$1"
  done
  fail "the counters did not settle"
}

expect_unchanged() {
  settled_snapshot "$SCRATCH/after"
  assert_same_file "$SCRATCH/before" "$SCRATCH/after" "kernel state $1"
  local writes
  writes=$(log_count "$WRITING_SYNC_LINE")
  ((writes == 1)) || fail "$1: $((writes - 1)) syncs logged changes: $(grep -E "$WRITING_SYNC_LINE" "$KIPVS_LOG" | tail -n 1)"
}

setup
# Traffic, and a connection left open, so that counters and ActiveConn are not zero.
http_get client "$VIP" 80 4 >/dev/null
hold_start client "$NODE_IP" 30100
hold open >/dev/null
settled_snapshot "$SCRATCH/before"

"$KIPVS" run --once --source "file:$MANIFEST" --hostname-override "$NODE_NAME" >>"$KIPVS_LOG" 2>&1 ||
  fail "second kipvs run --once exited non-zero"
expect_unchanged "after a second run --once"

agent_start --log-level debug --ipvs-sync-period 1s
wait_syncs 3
agent_stop
# SIGTERM, as a kubelet sends it, ends the agent through its graceful shutdown, not a kill.
grep -q "stopping; kernel state left in place" "$KIPVS_LOG" || fail "SIGTERM did not end the agent cleanly"
expect_unchanged "after a long-running agent's syncs"

plan=$("$KIPVS" plan --source "file:$MANIFEST" --hostname-override "$NODE_NAME") || fail "kipvs plan exited non-zero"
assert_eq "# nothing to change" "$plan" "kipvs plan on unchanged input"
