#!/usr/bin/env bash
# kipvs end to end, inside the UML guest (`make demo` runs `integration/uml.sh integration/demo.sh`):
# three fake pods behind the Services of examples/demo.yaml, the traffic each pod gets, then the
# Deployment scaled down by one pod while kipvs runs. Then the cluster mode: kipvs on a Kubernetes
# API server (the test server), kubectl applying a Service and a Deployment's EndpointSlice to it,
# then the slice as the Deployment scales up and down, while the traffic follows.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
export KIPVS=${KIPVS:-$REPO/.build/debug/kipvs}
readonly API_SERVER=${KIPVS_API_SERVER:-$REPO/.build/debug/kube-api-test-server}
readonly EXAMPLE=$REPO/examples/demo.yaml
readonly NODE_IP=172.20.0.10 SHOP_VIP=10.96.0.20
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

# ---------------------------------------------------------------------------- cluster mode

readonly KUBECONFIG_PATH=$SCRATCH/kubeconfig

# kubectl ARGS...: the real kubectl against the test API server, in $SCRATCH (where the
# manifests are); prints the command first.
kubectl_show() {
  echo "\$ kubectl $*"
  (cd "$SCRATCH" && kubectl --kubeconfig "$KUBECONFIG_PATH" --cache-dir "$SCRATCH/kubectl-cache" "$@") 2>&1 | sed 's/^/  /'
}

# kubectl_apply FILE...: server-side apply, as a controller or an operator writes to the API server.
# --validate=false: validation would fetch the OpenAPI documents, which the test server does not serve.
kubectl_apply() {
  local args=() file
  for file in "$@"; do args+=(-f "$file"); done
  kubectl_show apply --server-side --validate=false "${args[@]}" || fail "kubectl apply ${args[*]}"
}

service_yaml() {
  cat <<YAML
apiVersion: v1
kind: Service
metadata: {name: shop, namespace: default}
spec:
  type: ClusterIP
  clusterIP: $SHOP_VIP
  clusterIPs: [$SHOP_VIP]
  selector: {app: shop}
  ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]
YAML
}

# slice_yaml POD...: the Deployment's EndpointSlice of shop with these pods ready; POD=terminating
# for one shutting down.
slice_yaml() {
  local pod state
  cat <<YAML
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: shop-5kq9w
  namespace: default
  labels: {kubernetes.io/service-name: shop}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
YAML
  for pod in "$@"; do
    state="{ready: true}"
    if [[ $pod == *=terminating ]]; then
      pod=${pod%=terminating}
      state="{ready: false, serving: true, terminating: true}"
    fi
    echo "- {addresses: [$(pod_ip "$pod")], conditions: $state, nodeName: $NODE_NAME, targetRef: {kind: Pod, name: shop-$pod}}"
  done
}

slices() {
  kubectl_show get endpointslices -l kubernetes.io/service-name=shop \
    -o 'custom-columns=NAME:.metadata.name,ADDRESSES:.endpoints[*].addresses[0],READY:.endpoints[*].conditions.ready,POD:.endpoints[*].targetRef.name'
}

start_cluster() {
  heading "Cluster mode: kipvs on a Kubernetes API server"
  echo "\$ kipvs cleanup   # the file-source agent is stopped; its virtual servers and kipvs0 go"
  "$KIPVS" cleanup --hostname-override "$NODE_NAME" 2>&1 | sed 's/^/  /'
  [[ -x $API_SERVER ]] || fail "no test API server at $API_SERVER (make demo builds it)"
  "$API_SERVER" --listen 127.0.0.1:16443 --kubeconfig-out "$KUBECONFIG_PATH" >/dev/null 2>>"$SCRATCH/api-server.log" &
  PIDS+=($!)
  wait_for 30 "kubeconfig from the API server" test -s "$KUBECONFIG_PATH"
  echo "kube-api-test-server: a Kubernetes API server for tests on 127.0.0.1:16443 (discovery, list, watch,"
  echo "create, replace, delete, server-side apply). kubectl writes the Service and the EndpointSlice the"
  echo "Deployment's controller would write; kipvs reads them."
  service_yaml >"$SCRATCH/shop-service.yaml"
  slice_yaml pod-a >"$SCRATCH/shop-slice.yaml"
  kubectl_apply shop-service.yaml shop-slice.yaml
  kubectl_show get services -o 'custom-columns=NAME:.metadata.name,TYPE:.spec.type,CLUSTER-IP:.spec.clusterIP,PORT:.spec.ports[*].port'
  slices
  echo "\$ kipvs run --source kubernetes --kubeconfig kubeconfig --hostname-override $NODE_NAME &"
  "$KIPVS" run --source kubernetes --kubeconfig "$KUBECONFIG_PATH" --hostname-override "$NODE_NAME" >>"$KIPVS_LOG" 2>&1 &
  KIPVS_PID=$!
  wait_rule "-a -t $SHOP_VIP:80 -r $(pod_ip pod-a):8080 -m -w 1"
  distribution "shop, Deployment at 1 replica" client-3 "$SHOP_VIP" 80
}

cluster_scale() {
  heading "Deployment shop scaled to 3: its EndpointSlice gains pod-b and pod-c"
  slice_yaml pod-a pod-b pod-c >"$SCRATCH/shop-slice.yaml"
  kubectl_apply shop-slice.yaml
  slices
  wait_rule "-a -t $SHOP_VIP:80 -r $(pod_ip pod-c):8080 -m -w 1"
  distribution "shop at 3 replicas" client-3 "$SHOP_VIP" 80

  heading "Deployment shop scaled to 2: pod-c is terminating"
  slice_yaml pod-a pod-b pod-c=terminating >"$SCRATCH/shop-slice.yaml"
  kubectl_apply shop-slice.yaml
  slices
  wait_no_rule "-a -t $SHOP_VIP:80 -r $(pod_ip pod-c):8080 -m -w 1"
  distribution "shop at 2 replicas" client-3 "$SHOP_VIP" 80
  echo "\$ kipvs status --services --kubeconfig kubeconfig --hostname-override $NODE_NAME"
  "$KIPVS" status --services --kubeconfig "$KUBECONFIG_PATH" --hostname-override "$NODE_NAME" 2>&1 | sed 's/^/  /'
}

main() {
  start_pods
  start_agent
  distribution "web (ClusterIP, rr)" client-1 10.96.0.10 80
  distribution "web-public (NodePort)" client-2 "$NODE_IP" 30080
  affinity
  scale_down
  distribution "web after the scale-down" client-1 10.96.0.10 80
  agent_stop
  start_cluster
  cluster_scale
  heading "Done"
}

main
