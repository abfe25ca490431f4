#!/usr/bin/env bash
# `kipvs status --services` against the real kernel: each virtual server under its Service port
# with the Service's type and policies, each real server with its endpoint's state and the
# kernel's connection counts; a pod shutting down while a connection holds it drains at weight 0
# and says so; virtual servers no Service explains are stale (kipvs' address) or foreign.
source "$(dirname "$0")/pods.sh"

readonly VIP=10.96.0.30

# cluster_yaml POD_B_CONDITIONS: web with pod-a ready and pod-b as given.
cluster_yaml() {
  cat <<YAML
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: $VIP
  internalTrafficPolicy: Cluster
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-x1
  namespace: default
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
- addresses: [$(pod_ip pod-a)]
  conditions: {ready: true}
  nodeName: $NODE_NAME
- addresses: [$(pod_ip pod-b)]
  conditions: $1
  nodeName: node-2
YAML
}

status() {
  "$KIPVS" status --services --source "file:$MANIFEST" --hostname-override "$NODE_NAME"
}

# line_of OUTPUT ADDRESS: the real-server line of ADDRESS.
line_of() {
  grep -E -- "-> ${2//./\\.}:8080 " <<<"$1" || fail "no line for $2 in: $1"
}

pod_add pod-a 1
pod_add pod-b 2
client_add client 1
pods_wait_ready
cluster_yaml "{ready: true}" | manifest_write
agent_start
wait_rule "-a -t $VIP:80 -r $(pod_ip pod-b):8080 -m -w 1"

out=$(status) || fail "kipvs status --services exited non-zero: $out"
echo "$out"
assert_contains "$out" "^default/web:http +ClusterIP, external Cluster, internal Cluster$" "the Service port line"
assert_contains "$out" "^  TCP +${VIP//./\\.}:80 +rr +cluster IP$" "the virtual server line"
assert_contains "$(line_of "$out" "$(pod_ip pod-a)")" " 1 +ready +$NODE_NAME +0 +0$" "pod-a"
assert_contains "$(line_of "$out" "$(pod_ip pod-b)")" " 1 +ready +node-2 +0 +0$" "pod-b"

# A connection held open on pod-b, then pod-b shuts down: it stays, drained at weight 0.
hold_start client "$VIP" 80
for ((i = 0; i < 6; i++)); do
  answer=$(hold open)
  [[ $answer == pod-b* ]] && break
done
[[ $answer == pod-b* ]] || fail "no held connection reached pod-b"
cluster_yaml "{ready: false, serving: true, terminating: true}" | manifest_write
wait_rule "-a -t $VIP:80 -r $(pod_ip pod-b):8080 -m -w 0"
out=$(status) || fail "kipvs status --services exited non-zero: $out"
echo "$out"
assert_contains "$(line_of "$out" "$(pod_ip pod-b)")" " 0 +serving, terminating, draining +node-2 +[1-9][0-9]* +[0-9]+$" \
  "pod-b draining with its held connection"
assert_contains "$out" "^1 Service port, 1 virtual server, 2 real servers \(1 draining\); " "the summary"

# Virtual servers no Service explains: one on kipvs' cluster IP (stale), one elsewhere (foreign).
ipvsadm -A -t "$VIP:81" -s rr
ipvsadm -A -t 10.1.2.3:80 -s wlc
ipvsadm -a -t 10.1.2.3:80 -r 10.1.2.4:80 -m
agent_stop
out=$(status) || fail "kipvs status --services exited non-zero: $out"
echo "$out"
assert_contains "$out" "^\(no Service\)$" "the section of unexplained virtual servers"
assert_contains "$out" "^  TCP +${VIP//./\\.}:81 +rr +stale: kipvs deletes it at the next sync$" "the stale virtual server"
assert_contains "$out" "^  TCP +10\.1\.2\.3:80 +wlc +foreign: kipvs leaves it alone$" "the foreign virtual server"
assert_contains "$out" "; without a Service: 1 stale, 1 foreign$" "the summary"

# The same from the API server: one complete list, then the report.
readonly API_SERVER=${KIPVS_API_SERVER:-$(dirname "$KIPVS")/kube-api-test-server}
[[ -x $API_SERVER ]] || fail "no test API server at $API_SERVER (set KIPVS_API_SERVER)"
"$API_SERVER" --listen 127.0.0.1:16453 --admin-listen 127.0.0.1:16454 --kubeconfig-out "$SCRATCH/kubeconfig" \
  >/dev/null 2>>"$SCRATCH/api-server.log" &
PIDS+=($!)
wait_for 30 "kubeconfig from the API server" test -s "$SCRATCH/kubeconfig"
curl -sS --fail-with-body --max-time 30 -X POST --data-binary @"$MANIFEST" http://127.0.0.1:16454/admin/apply >/dev/null ||
  fail "the API server refused the manifest"
from_api=$("$KIPVS" status --services --kubeconfig "$SCRATCH/kubeconfig" --hostname-override "$NODE_NAME") ||
  fail "kipvs status --services --kubeconfig exited non-zero: $from_api"
assert_eq "$out" "$from_api" "the report from the API server against the one from the file"
echo "from the API server: the same report"

# Plain status is unchanged, and --services takes no other view.
kipvs status >/dev/null || fail "kipvs status without --services failed"
if kipvs status --services --json --source "file:$MANIFEST" 2>/dev/null; then fail "--services --json was accepted"; fi
