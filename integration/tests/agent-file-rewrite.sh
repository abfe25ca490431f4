#!/usr/bin/env bash
# The manifest rewritten in place, as `kubectl get … -o yaml > cluster.yaml` does it (truncate,
# then write a moment later), 20 times: no virtual server and no bound VIP is ever missing,
# however the agent's reads fall. Nor does an empty file remove anything. A file cut at a
# document boundary, which parses, is held back as a suspicious drop; put right within the hold
# it never applies, left alone it applies after 5 s.
source "$(dirname "$0")/pods.sh"

readonly COUNT=23

# services_yaml FIRST LAST: Services sFIRST…sLAST with one real server each.
services_yaml() {
  local i
  for ((i = $1; i <= $2; i++)); do
    cat <<YAML
---
apiVersion: v1
kind: Service
metadata: {name: s$i, namespace: default}
spec:
  clusterIP: 10.96.1.$i
  ports: [{port: 80, targetPort: 8080}]
$(slice_yaml "s$i" ":8080" "10.244.1.$((i + 1))")
YAML
  done
}

# census: "VIRTUAL_SERVERS ADDRESSES" as the kernel holds them now.
census() {
  local servers addresses
  servers=$(ipvsadm -Sn | grep -c '^-A' || true)
  addresses=$(ip -o -4 addr show dev kipvs0 2>/dev/null | wc -l)
  echo "$servers $addresses"
}

# census_is "SERVERS ADDRESSES"
census_is() {
  [[ $(census) == "$1" ]]
}

# Samples the census until $SCRATCH/stop appears, one line per sample in $SCRATCH/census.
watch_census() {
  while [[ ! -e $SCRATCH/stop ]]; do
    census >>"$SCRATCH/census"
    sleep 0.05
  done
}

# lowest_census: the fewest virtual servers and the fewest addresses any sample saw.
lowest_census() {
  awk 'NR == 1 || $1 < s { s = $1 } NR == 1 || $2 < a { a = $2 } END { print s, a }' "$SCRATCH/census"
}

full=$SCRATCH/full.yaml
services_yaml 1 "$COUNT" >"$full"
manifest_write <"$full"
agent_start --log-level debug --ipvs-sync-period 1s
wait_for 30 "$COUNT virtual servers and addresses" census_is "$COUNT $COUNT"

watch_census &
watcher=$!
PIDS+=("$watcher")
for round in $(seq 1 20); do
  # The shell truncates on opening; the writer's output follows 0–0.4 s later, as kubectl's does.
  { sleep "0.$((round % 5))"; cat "$full"; } >"$MANIFEST"
  sleep "0.$(((round * 3) % 7))"
done
sleep 2
touch "$SCRATCH/stop"
wait "$watcher"
echo "$(wc -l <"$SCRATCH/census") samples during 20 rewrites; fewest (virtual servers, addresses): $(lowest_census)"
assert_eq "$COUNT $COUNT" "$(lowest_census)" "fewest virtual servers and addresses during the rewrites"
(($(log_count 'has no objects') > 0)) || fail "no read of the truncated file was logged as refused"
agent_alive || fail "kipvs exited during the rewrites"

# An empty file, left in place: refused, logged once, and every later sync keeps the last good state.
rm -f "$SCRATCH/stop" "$SCRATCH/census"
refused=$(log_count 'source rejected')
: >"$MANIFEST"
wait_for 15 "the empty file refused" log_count_at_least 'source rejected' $((refused + 1))
wait_syncs 3
assert_eq "$COUNT $COUNT" "$(census)" "after an empty file and three syncs"
assert_eq $((refused + 1)) "$(log_count 'source rejected')" "refusals of the one empty file"
cat "$full" >"$MANIFEST"

# Cut at a document boundary: the first 10 Services only. Held, then put right: nothing changes.
held=$(log_count 'suspicious change held back')
services_yaml 1 10 >"$MANIFEST"
wait_for 15 "the drop held back" log_count_at_least 'suspicious change held back' $((held + 1))
sleep 1
assert_eq "$COUNT $COUNT" "$(census)" "while the drop is held"
cat "$full" >"$MANIFEST"
sleep 7
assert_eq "$COUNT $COUNT" "$(census)" "after the drop was put right within the hold"
(($(log_count 'held change stood') == 0)) || fail "a held change applied although it was put right"

# The same drop, left alone, applies once it has stood 5 s.
services_yaml 1 10 >"$MANIFEST"
wait_for 30 "the held drop to apply" census_is "10 10"
(($(log_count 'held change stood') == 1)) || fail "the drop applied without the hold being logged"
