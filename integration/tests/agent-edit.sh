#!/usr/bin/env bash
# Editing the agent's file while it runs. A pod removed from the EndpointSlice gets no new
# connections, yet a connection already open to it keeps working: its real server stays at
# weight 0 until that connection is gone, and is deleted then. A pod added gets traffic.
source "$(dirname "$0")/pods.sh"

readonly VIP=10.96.0.40

# write_cluster POD...: the Service with these pods as its endpoints.
write_cluster() {
  manifest_write <<YAML
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: $VIP
  ports: [{name: http, port: 80, targetPort: 8080}]
$(slice_yaml web "http:8080" "$@")
YAML
}

real_server() {
  echo "-a -t $VIP:80 -r $(pod_ip "$1"):8080 -m -w $2"
}

setup() {
  local pod index=1
  for pod in pod-a pod-b pod-c pod-d; do pod_add "$pod" $((index++)); done
  client_add client 1
  write_cluster pod-a pod-b pod-c
  agent_start --log-level debug
  pods_wait_ready
  for pod in pod-a pod-b pod-c; do wait_rule "$(real_server "$pod" 1)"; done
}

setup

hold_start client "$VIP" 80
held=$(hold open)
held=${held%% *}
echo "held a connection to $held; removing it from the EndpointSlice"
remaining=()
for pod in pod-a pod-b pod-c; do [[ $pod == "$held" ]] || remaining+=("$pod"); done
write_cluster "${remaining[@]}"
wait_rule "$(real_server "$held" 0)"

answers=$(http_get client "$VIP" 80 8)
echo "new connections: $(tally <<<"$answers")"
assert_eq 0 "$(count_of "$held" <<<"$answers")" "new connections to the removed $held"
assert_eq 4 "$(count_of "${remaining[0]}" <<<"$answers")" "new connections to ${remaining[0]}"
assert_eq 4 "$(count_of "${remaining[1]}" <<<"$answers")" "new connections to ${remaining[1]}"

# Syncs come every second while something drains; a few must pass without deleting it.
wait_syncs 3
has_rule "$(real_server "$held" 0)" || fail "$held deleted while a connection to it was open"
answer=$(hold get 0)
assert_eq "$held 8080" "$answer" "request on the connection held across the edit"

hold reset 0 >/dev/null
start=$SECONDS
# IPVS keeps a reset connection for 10 s (its CLOSE state) before the count drops to zero.
wait_no_rule "$(real_server "$held" 0)" 40
echo "$held deleted $((SECONDS - start))s after its last connection closed"

write_cluster "${remaining[@]}" pod-d
wait_rule "$(real_server pod-d 1)"
answers=$(http_get client "$VIP" 80 6)
echo "after adding pod-d: $(tally <<<"$answers")"
assert_eq 2 "$(count_of pod-d <<<"$answers")" "new connections to the added pod-d"
