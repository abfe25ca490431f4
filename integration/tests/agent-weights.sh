#!/usr/bin/env bash
# Endpoint weights from the kipvs.io/endpoint-weights annotation, by address or pod name: the
# weights in `ipvsadm -Sn`, wrr sharing new connections by them, weight 0 taking none while a
# connection already open to it keeps working, mh falling back from a drained pod, and a bad
# annotation ignored as a whole with a warning that names the Service and the entry.
source "$(dirname "$0")/pods.sh"

readonly VIP=10.96.0.70 MH_VIP=10.96.0.71

# write_cluster WEIGHTS [MH_WEIGHTS]
write_cluster() {
  {
    service_yaml web "$VIP" wrr "$1"
    slice_with_pods web
    service_yaml hashed "$MH_VIP" mh "${2:-}"
    slice_with_pods hashed
  } | manifest_write
}

# service_yaml NAME CLUSTER_IP SCHEDULER WEIGHTS
service_yaml() {
  cat <<YAML
---
apiVersion: v1
kind: Service
metadata:
  name: $1
  namespace: default
  annotations: {kipvs.io/scheduler: $3, kipvs.io/endpoint-weights: "$4"}
spec:
  clusterIP: $2
  ports: [{port: 80, targetPort: 8080}]
YAML
}

# slice_with_pods SERVICE: pod-a, pod-b and pod-c with their pods named in targetRef.
slice_with_pods() {
  local pod
  cat <<YAML
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: $1-x1, namespace: default, labels: {kubernetes.io/service-name: $1}}
addressType: IPv4
ports: [{name: "", port: 8080, protocol: TCP}]
endpoints:
YAML
  for pod in pod-a pod-b pod-c; do
    echo "- {addresses: [$(pod_ip "$pod")], nodeName: $NODE_NAME, targetRef: {kind: Pod, namespace: default, name: $pod}}"
  done
}

real_server() {
  echo "-a -t $1:80 -r $(pod_ip "$2"):8080 -m -w $3"
}

log_has_warning() {
  grep -qF 'Service default/web: annotation kipvs.io/endpoint-weights: entry "pod-b=zero"' "$KIPVS_LOG"
}

pod_add pod-a 1
pod_add pod-b 2
pod_add pod-c 3
client_add client 1
client_add other 2
write_cluster "$(pod_ip pod-a)=3, pod-b=1, pod-c=0" "pod-c=1"
agent_start
pods_wait_ready

wait_rule "$(real_server "$VIP" pod-a 3)"
has_rule "$(real_server "$VIP" pod-b 1)" || fail "pod-b, weighted by its pod name, is not at weight 1"
has_rule "$(real_server "$VIP" pod-c 0)" || fail "pod-c is not at weight 0"
has_rule "-A -t $MH_VIP:80 -s mh -b mh-fallback,mh-port" || fail "mh with weights has no fallback: $(ipvsadm -Sn)"
has_rule "$(real_server "$MH_VIP" pod-a 1)" || fail "an unlisted pod is not at weight 1"

# wrr: 3 to 1 to 0.
answers=$(http_get client "$VIP" 80 16)
echo "wrr 3:1:0: $(tally <<<"$answers")"
assert_eq 12 "$(count_of pod-a <<<"$answers")" "connections to pod-a at weight 3"
assert_eq 4 "$(count_of pod-b <<<"$answers")" "connections to pod-b at weight 1"
assert_eq 0 "$(count_of pod-c <<<"$answers")" "connections to pod-c at weight 0"

# A connection open to pod-b stays when pod-b is drained by weight.
hold_start client "$VIP" 80
held=
for index in 0 1 2 3 4 5 6 7; do
  if [[ $(hold open) == "pod-b 8080" ]]; then held=$index; break; fi
done
[[ -n $held ]] || fail "eight connections and none reached pod-b"
write_cluster "pod-a=1, pod-b=0, pod-c=0" "pod-c=0"
wait_rule "$(real_server "$VIP" pod-b 0)"
has_rule "$(real_server "$VIP" pod-c 0)" || fail "pod-c left weight 0"
answers=$(http_get client "$VIP" 80 6)
assert_eq "pod-a" "$(distinct <<<"$answers")" "pods that took new connections"
assert_eq "pod-b 8080" "$(hold get "$held")" "request on the connection held while pod-b was drained"

# mh keeps the table slots of pod-c, drained from weight 1: the flows hashed to them go to
# another pod (the fallback), where they would otherwise find no server.
wait_rule "$(real_server "$MH_VIP" pod-c 0)"
for client in client other; do
  answers=$(http_get "$client" "$MH_VIP" 80 12)
  echo "mh from $client: $(tally <<<"$answers")"
  assert_eq 0 "$(count_of pod-c <<<"$answers")" "mh connections from $client to the drained pod-c"
  assert_eq 0 "$(count_of error <<<"$answers")" "mh connections from $client that found no server"
done

# A bad entry voids the annotation: every pod back at weight 1, and a warning.
write_cluster "pod-a=1, pod-b=zero"
wait_rule "$(real_server "$VIP" pod-b 1)"
has_rule "$(real_server "$VIP" pod-c 1)" || fail "pod-c not back at weight 1"
has_rule "-A -t $MH_VIP:80 -s mh -b mh-port" || fail "mh without weights kept its fallback: $(ipvsadm -Sn)"
wait_for 10 "a warning about the annotation" log_has_warning
