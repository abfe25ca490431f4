#!/usr/bin/env bash
# ClusterIP Services over three pods, one per scheduling behaviour, checked by which pod answers:
# rr spreads evenly; lc sends a new connection to the pod with the fewest open ones; sh and
# ClientIP affinity pin each client to one pod while different clients use several.
source "$(dirname "$0")/pods.sh"

readonly RR=10.96.0.10 LC=10.96.0.11 SH=10.96.0.12 AFFINITY=10.96.0.13
readonly CLIENTS=(client-1 client-2 client-3 client-4 client-5 client-6)

# service_yaml NAME CLUSTER_IP [SPEC_LINE...]: a one-port ClusterIP Service onto port 8080.
service_yaml() {
  local name=$1 ip=$2
  shift 2
  cat <<YAML
---
apiVersion: v1
kind: Service
metadata:
  name: $name
  namespace: default
YAML
  if [[ $name == lc || $name == sh ]]; then printf '  annotations: {kipvs.io/scheduler: %s}\n' "$name"; fi
  printf 'spec:\n  clusterIP: %s\n  ports: [{port: 80, targetPort: 8080}]\n' "$ip"
  local line
  for line in "$@"; do echo "  $line"; done
  slice_yaml "$name" ":8080" pod-a pod-b pod-c
}

setup() {
  pod_add pod-a 1
  pod_add pod-b 2
  pod_add pod-c 3
  local i
  for i in "${!CLIENTS[@]}"; do client_add "${CLIENTS[i]}" $((i + 1)); done
  {
    service_yaml rr "$RR"
    service_yaml lc "$LC"
    service_yaml sh "$SH"
    service_yaml affinity "$AFFINITY" "sessionAffinity: ClientIP"
  } | manifest_write
  agent_start
  pods_wait_ready
  wait_rule "-A -t $AFFINITY:80 -s rr -p 10800"
  wait_rule "-a -t $AFFINITY:80 -r $(pod_ip pod-c):8080 -m -w 1"
  has_rule "-A -t $LC:80 -s lc" || fail "lc Service has no lc virtual server"
  has_rule "-A -t $SH:80 -s sh" || fail "sh Service has no sh virtual server"
}

check_round_robin() {
  local answers pod n
  answers=$(http_get client-1 "$RR" 80 30)
  echo "rr: $(tally <<<"$answers")"
  for pod in pod-a pod-b pod-c; do
    n=$(count_of "$pod" <<<"$answers")
    ((n >= 8 && n <= 12)) || fail "rr: $pod answered $n of 30 (want 10±2): $(tally <<<"$answers")"
  done
}

# Two pods each hold one open connection, so every new connection goes to the third: lc
# weighs an open connection 256 times a closed one (rr would spread them).
check_least_connection() {
  hold_start client-1 "$LC" 80
  local first second answers idle
  first=$(hold open)
  first=${first%% *}
  second=$(hold open)
  second=${second%% *}
  [[ $first != "$second" ]] || fail "lc: second held connection went to the busy $first"
  answers=$(http_get client-2 "$LC" 80 6)
  idle=$(distinct <<<"$answers")
  echo "lc: held $first and $second, new connections: $(tally <<<"$answers")"
  [[ $idle != *$'\n'* && $idle != "$first" && $idle != "$second" ]] ||
    fail "lc: new connections went to $(tally <<<"$answers"), not only to the idle pod"
  hold reset 0 >/dev/null
  hold reset 1 >/dev/null
}

# check_pinned NAME VIP: every client sees one pod throughout; the clients see more than one.
check_pinned() {
  local name=$1 vip=$2 client answers pods seen=()
  for client in "${CLIENTS[@]}"; do
    answers=$(http_get "$client" "$vip" 80 5)
    pods=$(distinct <<<"$answers")
    [[ $pods != *$'\n'* && $pods == pod-* ]] || fail "$name: $client was not pinned: $(tally <<<"$answers")"
    seen+=("$pods")
  done
  echo "$name: clients pinned to ${seen[*]}"
  (($(printf '%s\n' "${seen[@]}" | sort -u | wc -l) > 1)) || fail "$name: every client went to ${seen[0]}"
}

setup
check_round_robin
check_least_connection
check_pinned sh "$SH"
check_pinned affinity "$AFFINITY"
