#!/usr/bin/env bash
# Graceful termination as kube-proxy does it: a real server that leaves without connections is
# deleted in the same sync; one with an open connection goes to weight 0 and stays until the
# connection is gone. Also between periodic resyncs, for a real server added since the last
# full read of the kernel (whose connections kipvs has never counted).
source "$(dirname "$0")/pods.sh"

readonly VIP=10.96.0.45

# write_cluster POD...: the Service with these pods as its endpoints.
write_cluster() {
  manifest_write <<YAML
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: $VIP
  ports: [{port: 80, targetPort: 8080}]
$(slice_yaml web ":8080" "$@")
YAML
}

real_server() {
  echo "-a -t $VIP:80 -r $(pod_ip "$1"):8080 -m -w $2"
}

# once: one `kipvs run --once` on the manifest; fails the test when it fails.
once() {
  "$KIPVS" run --once --source "file:$MANIFEST" --hostname-override "$NODE_NAME" >>"$KIPVS_LOG" 2>&1 ||
    fail "kipvs run --once failed"
}

# table_has LINE / table_lacks TEXT: checks without a running agent.
table_has() {
  grep -qxF -- "$1" <<<"$(ipvsadm -Sn)"
}

table_lacks() {
  ! grep -qF -- "$1" <<<"$(ipvsadm -Sn)"
}

# hold_until POD: opens held connections until one lands on POD; sets HELD to its index
# among every connection the holder has opened.
OPENED=0
HELD=
hold_until() {
  local answer tries
  for tries in 1 2 3 4 5 6; do
    answer=$(hold open)
    OPENED=$((OPENED + 1))
    if [[ ${answer%% *} == "$1" ]]; then
      HELD=$((OPENED - 1))
      return
    fi
  done
  fail "$tries new connections and none reached $1"
}

for index in 1 2 3 4; do pod_add "pod-$index" "$index"; done
client_add client 1
pods_wait_ready

# ---------------------------------------------------------------------------- --once
write_cluster pod-1 pod-2 pod-3
once
table_has "$(real_server pod-3 1)" || fail "first --once did not add pod-3"
write_cluster pod-1 pod-2
once
table_lacks "$(pod_ip pod-3):8080" || fail "an idle real server is still in the table after one --once: $(ipvsadm -Sn)"
echo "an idle real server left in the same --once"

hold_start client "$VIP" 80
hold_until pod-2
held=$HELD
write_cluster pod-1
once
table_has "$(real_server pod-2 0)" || fail "a real server with an open connection is not at weight 0: $(ipvsadm -Sn)"
assert_eq "pod-2 8080" "$(hold get "$held")" "request on the connection held across --once"
hold reset "$held" >/dev/null
# IPVS keeps a reset connection for 10 s (its CLOSE state) before the count drops to zero.
deadline=$((SECONDS + 40))
until once && table_lacks "$(pod_ip pod-2):8080"; do
  ((SECONDS < deadline)) || fail "pod-2 still in the table 40 s after its connection was reset"
  sleep 1
done
echo "a drained real server left once its connection was gone"

# ---------------------------------------------------------------------------- running agent
# A long resync period: every sync below plans against the table the last sync left.
write_cluster pod-1 pod-2
agent_start --log-level debug --ipvs-sync-period 10m
wait_rule "$(real_server pod-2 1)"

write_cluster pod-1 pod-2 pod-4
wait_rule "$(real_server pod-4 1)"
write_cluster pod-1 pod-2
wait_no_text "$(pod_ip pod-4):8080"
last=$(log_records | grep -E "$WRITING_SYNC_LINE" | tail -n 1)
assert_contains "$last" "real servers \+0 ~0 -1," "the sync that removed the idle pod-4"

write_cluster pod-1 pod-2 pod-3
wait_rule "$(real_server pod-3 1)"
hold_until pod-3
held=$HELD
write_cluster pod-1 pod-2
wait_rule "$(real_server pod-3 0)"
wait_syncs 3
has_rule "$(real_server pod-3 0)" || fail "pod-3, added since the last read, was deleted with a connection open"
assert_eq "pod-3 8080" "$(hold get "$held")" "request on the connection held across the edit"
hold reset "$held" >/dev/null
wait_no_rule "$(real_server pod-3 0)" 40
echo "pod-3 drained and deleted"
