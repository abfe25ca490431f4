# shellcheck shell=bash
# A two-node cluster in one guest, for the packet-path tests (sourced; see ../packet-tests.sh).
#
#                     LAN bridge lan0 (its own namespace), 192.168.50.0/24, fd00:50::/64
#        ┌───────────────────┬──────────────────┬──────────────────┐
#   node A .11            node B .12        client .100       client2 .101
#   (this namespace)      cni0 10.244.2.1   (no route to pods)
#   cni0 10.244.1.1       └ pod b1 .2
#   ├ pod a1 .2
#   └ pod a2 .3           Pod subnets routed via the node addresses (host-gw); each pod's
#                         default route is its own node's cni0 address, so replies take the
#                         short way back, as in a cluster.
#
# Every node, pod and client has an IPv6 address too: the LAN's ::11, ::12, ::100, ::101; pods
# in fd00:244:1::/64 on node A and fd00:244:2::/64 on node B, bridges on ::1, pods from ::2.
#
# The test's own network namespace plays node A; the others are named namespaces whose names
# are unique to the test. A pod, a node or a client is named by its role: a, b, client,
# client2, lan, a1, a2, b1. Every process started here stops, and every namespace goes, when
# the test exits.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
readonly REPO
: "${KIPVS:=$REPO/.build/debug/kipvs}"
: "${PEER:=$REPO/.build/peer}"
export KIPVS PEER

readonly NODE_A=192.168.50.11 NODE_B=192.168.50.12 CLIENT=192.168.50.100 CLIENT2=192.168.50.101
readonly NODE_A6=fd00:50::11 NODE_B6=fd00:50::12 CLIENT6=fd00:50::100
readonly CNI_A=10.244.1.1 CNI_B=10.244.2.1 CNI_A6=fd00:244:1::1 CNI_B6=fd00:244:2::1
readonly POD_A1=10.244.1.2 POD_A2=10.244.1.3 POD_B1=10.244.2.2
readonly POD_A16=fd00:244:1::2 POD_A26=fd00:244:1::3 POD_B16=fd00:244:2::2
# Both families' pod prefixes: fd00:244::/32 holds each node's fd00:244:N::/64.
readonly CLUSTER_CIDR=10.244.0.0/16 CLUSTER_CIDR6=fd00:244::/32
# Node names as the manifests' endpoints carry them.
readonly NODE_NAME_A=node-a NODE_NAME_B=node-b

SCRATCH=$(mktemp -d)
readonly SCRATCH
readonly MANIFESTS=$SCRATCH/manifests
# Named namespaces are seen by the whole guest: the test's process id makes the names its own.
readonly TOPO=pk$$
PIDS=()
NAMESPACES=()
declare -A AGENT_PIDS=()
mkdir -p "$MANIFESTS"

# A sleep without a process (each costs ~120 ms in the guest): a read that times out on a
# FIFO held open for writing, so it never sees an end of file.
mkfifo "$SCRATCH/nap"
exec {NAP_FD}<>"$SCRATCH/nap"
nap() {
  read -r -t "$1" -u "$NAP_FD" _ || true
}

# shellcheck disable=SC2317 # run by the EXIT trap
topology_down() {
  local pid ns
  for pid in "${AGENT_PIDS[@]}" "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${AGENT_PIDS[@]}" "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$SCRATCH"
}
trap topology_down EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# in_ns ROLE COMMAND...: COMMAND in the network namespace of ROLE; node A is this one. nsenter
# enters only that (ip netns exec also remounts /sys, which costs a process's worth of time here).
in_ns() {
  local path=/run/netns/$TOPO-$1
  [[ $1 != a ]] || path=/proc/$$/ns/net
  shift
  nsenter --net="$path" "$@"
}

# ---------------------------------------------------------------------------- bring-up

# The whole topology in eight processes: one `ip -batch` per namespace.
topology_up() {
  local ns
  for ns in lan b client client2 a1 a2 b1; do NAMESPACES+=("$TOPO-$ns"); done
  # Node A: its namespaces, its LAN link, its bridge and pods; the peers start in their namespaces.
  {
    for ns in "${NAMESPACES[@]}"; do echo "netns add $ns"; done
    # The kernel looks a new link's name up in the caller's namespace, even for a link made
    # in another: node A's own eth0 comes after the others'.
    cat <<EOF
link add eth0 netns $TOPO-b type veth peer name to-b netns $TOPO-lan
link add eth0 netns $TOPO-client type veth peer name to-c netns $TOPO-lan
link add eth0 netns $TOPO-client2 type veth peer name to-c2 netns $TOPO-lan
link add veth-b1 netns $TOPO-b type veth peer name eth0 netns $TOPO-b1
link add eth0 type veth peer name to-a netns $TOPO-lan
link add veth-a1 type veth peer name eth0 netns $TOPO-a1
link add veth-a2 type veth peer name eth0 netns $TOPO-a2
EOF
    node_links "$NODE_A" "$NODE_A6" "$CNI_A" "$CNI_A6" "$NODE_B" "$NODE_B6" 10.244.2.0/24 fd00:244:2::/64 veth-a1 veth-a2
  } >"$SCRATCH/a.batch"
  ip -batch "$SCRATCH/a.batch" || fail "node A's links (batch in $SCRATCH/a.batch)"
  node_sysctls
  {
    node_links "$NODE_B" "$NODE_B6" "$CNI_B" "$CNI_B6" "$NODE_A" "$NODE_A6" 10.244.1.0/24 fd00:244:1::/64 veth-b1
  } >"$SCRATCH/b.batch"
  # shellcheck disable=SC2016 # expanded by the inner shell
  in_ns b bash -c "$(declare -f node_sysctls)"'; node_sysctls && exec ip -batch "$0"' "$SCRATCH/b.batch" ||
    fail "node B's links"
  cat >"$SCRATCH/lan.batch" <<EOF
link add lan0 type bridge
link set lan0 up
link set to-a master lan0 up
link set to-b master lan0 up
link set to-c master lan0 up
link set to-c2 master lan0 up
EOF
  in_ns lan ip -batch "$SCRATCH/lan.batch" || fail "the LAN bridge"
  host_batch client "$CLIENT/24" "$CLIENT6/64"
  host_batch client2 "$CLIENT2/24" fd00:50::101/64
  host_batch a1 "$POD_A1/24" "$POD_A16/64" "$CNI_A" "$CNI_A6"
  host_batch a2 "$POD_A2/24" "$POD_A26/64" "$CNI_A" "$CNI_A6"
  host_batch b1 "$POD_B1/24" "$POD_B16/64" "$CNI_B" "$CNI_B6"
}

# node_links ADDRESS ADDRESS6 CNI CNI6 OTHER OTHER6 OTHER_PODS OTHER_PODS6 POD_PORT...: a node's
# LAN address, its pod bridge, and host-gw routes to the other node's pods.
node_links() {
  local address=$1 address6=$2 cni=$3 cni6=$4 other=$5 other6=$6 pods=$7 pods6=$8
  shift 8
  local port
  # nodad: an address is usable at once, not after duplicate detection's second.
  cat <<EOF
link add cni0 type bridge
link set lo up
addr add $address/24 dev eth0
addr add $address6/64 dev eth0 nodad
link set eth0 up
addr add $cni/24 dev cni0
addr add $cni6/64 dev cni0 nodad
link set cni0 up
route add $pods via $other
route add $pods6 via $other6
EOF
  for port in "$@"; do
    # Hairpin: a pod that reaches its own Service gets the answer back through its own port.
    echo "link set $port master cni0 up"
    echo "link set $port type bridge_slave hairpin on"
  done
}

# kubeadm's node prerequisites: forwarding, and bridged pod traffic through netfilter (IPVS
# sees pod-to-pod traffic on one bridge only so). Per namespace since Linux 5.3.
node_sysctls() {
  echo 1 >/proc/sys/net/ipv4/ip_forward
  echo 1 >/proc/sys/net/ipv6/conf/all/forwarding
  echo 1 >/proc/sys/net/bridge/bridge-nf-call-iptables
  echo 1 >/proc/sys/net/bridge/bridge-nf-call-ip6tables
}

# host_batch ROLE ADDRESS/LEN ADDRESS6/LEN [GATEWAY GATEWAY6]: a pod or a client on its eth0.
host_batch() {
  local role=$1 address=$2 address6=$3 gateway=${4-} gateway6=${5-}
  {
    echo "link set lo up"
    echo "addr add $address dev eth0"
    echo "addr add $address6 dev eth0 nodad"
    echo "link set eth0 up"
    if [[ -n $gateway ]]; then
      echo "route add default via $gateway"
      echo "route add default via $gateway6"
    fi
  } >"$SCRATCH/$role.batch"
  in_ns "$role" ip -batch "$SCRATCH/$role.batch" || fail "$role's links (batch in $SCRATCH/$role.batch)"
}

# route_add ROLE PREFIX VIA: e.g. a client's route to a load balancer's address through node A.
route_add() {
  in_ns "$1" ip route add "$2" via "$3" || fail "route to $2 via $3 in $1"
}

# ---------------------------------------------------------------------------- peers

# serve ROLE PORT...: `peer serve ROLE PORT...` in ROLE's namespace, answering "ROLE SOURCE";
# returns once it listens.
serve() {
  local role=$1 log=$SCRATCH/serve-$1.log
  shift
  : >"$log"
  in_ns "$role" "$PEER" serve "$role" "$@" >>"$log" 2>&1 &
  PIDS+=($!)
  local tries=0
  until [[ $(<"$log") == listening* ]]; do
    ((tries++ < 200)) || fail "peer serve in $role: $(<"$log")"
    nap 0.05
  done
}

# peer ROLE MODE ADDRESS PORT [OPTION...]: a peer client in ROLE's namespace; prints its
# answer ("a2 10.244.1.2", "refused", "timeout") and never fails the test itself.
peer() {
  local role=$1
  shift
  in_ns "$role" "$PEER" "$@" 2>&1 || true
}

# ---------------------------------------------------------------------------- manifests

# manifest_write NAME < YAML: one file of the manifest directory, replaced in one step (a
# rename), so that an agent never reads a half-written file.
manifest_write() {
  cat >"$MANIFESTS/.$1.new"
  mv -f "$MANIFESTS/.$1.new" "$MANIFESTS/$1.yaml"
}

# endpoint_yaml FAMILY ROLE: one ready endpoint of the pod ROLE (a1, a2 or b1), on its node, by
# its address of FAMILY (IPv4 or IPv6).
endpoint_yaml() {
  local address address6 node
  case $2 in
    a1) address=$POD_A1 address6=$POD_A16 node=$NODE_NAME_A ;;
    a2) address=$POD_A2 address6=$POD_A26 node=$NODE_NAME_A ;;
    b1) address=$POD_B1 address6=$POD_B16 node=$NODE_NAME_B ;;
    *) fail "no such pod: $2" ;;
  esac
  [[ $1 != IPv6 ]] || address=$address6
  printf -- '- addresses: [%s]\n  conditions: {ready: true}\n  nodeName: %s\n' "$address" "$node"
}

# service_yaml NAME SPEC_LINES STATUS_LINES PORT_SPEC POD...: a Service and its EndpointSlice.
# PORT_SPEC: comma-separated PROTOCOL:PORT:TARGET[:NODEPORT]; SPEC_LINES are extra lines of
# the spec (indented two spaces), STATUS_LINES a status block or empty.
service_yaml() {
  local name=$1 spec=$2 status=$3 ports=$4
  shift 4
  local entry protocol port target node_port lower
  echo "---"
  echo "apiVersion: v1"
  echo "kind: Service"
  echo "metadata: {name: $name, namespace: default}"
  echo "spec:"
  [[ -z $spec ]] || echo "$spec"
  echo "  ports:"
  for entry in ${ports//,/ }; do
    IFS=: read -r protocol port target node_port <<<"$entry"
    lower=${protocol,,}
    printf '  - {name: %s, protocol: %s, port: %s, targetPort: %s%s}\n' "$lower" "$protocol" "$port" "$target" \
      "${node_port:+, nodePort: $node_port}"
  done
  [[ -z $status ]] || echo "$status"
  slice_yaml "$name" IPv4 "$ports" "$@"
}

# dual_stack_yaml NAME CLUSTER_IP CLUSTER_IP6 SPEC_LINES STATUS_LINES PORT_SPEC POD...: as
# service_yaml, for a RequireDualStack Service with a cluster IP and an EndpointSlice per family.
dual_stack_yaml() {
  local name=$1 ip=$2 ip6=$3 spec=$4 status=$5 ports=$6
  shift 6
  service_yaml "$name" "  clusterIP: $ip
  clusterIPs: [$ip, $ip6]
  ipFamilies: [IPv4, IPv6]
  ipFamilyPolicy: RequireDualStack${spec:+
$spec}" "$status" "$ports" "$@"
  slice_yaml "$name" IPv6 "$ports" "$@"
}

# slice_yaml SERVICE FAMILY PORT_SPEC POD...: the Service's EndpointSlice of FAMILY (IPv4 or IPv6).
slice_yaml() {
  local name=$1 family=$2 ports=$3
  shift 3
  local entry protocol port target node_port lower pod
  cat <<YAML
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: $name-${family,,}
  namespace: default
  labels: {kubernetes.io/service-name: $name}
addressType: $family
ports:
YAML
  for entry in ${ports//,/ }; do
    IFS=: read -r protocol port target node_port <<<"$entry"
    lower=${protocol,,}
    echo "- {name: $lower, protocol: $protocol, port: $target}"
  done
  if (($#)); then echo "endpoints:"; else echo "endpoints: []"; fi
  for pod in "$@"; do endpoint_yaml "$family" "$pod"; done
}

# ---------------------------------------------------------------------------- agents

# agent_flags NODE: kube-proxy's flags for a node of this topology (a or b).
agent_flags() {
  local name address address6
  case $1 in
    a) name=$NODE_NAME_A address=$NODE_A address6=$NODE_A6 ;;
    b) name=$NODE_NAME_B address=$NODE_B address6=$NODE_B6 ;;
    *) fail "no such node: $1" ;;
  esac
  echo --source "file:$MANIFESTS" --hostname-override "$name" --nodeport-addresses "$address/32,$address6/128"
}

# agent_once NODE [FLAG...]: one sync with `kipvs run --once`; its log in $SCRATCH/once-NODE.log.
agent_once() {
  local node=$1
  shift
  # shellcheck disable=SC2046 # one flag per word
  in_ns "$node" "$KIPVS" run --once $(agent_flags "$node") "$@" >"$SCRATCH/once-$node.log" 2>&1 ||
    fail "kipvs run --once on node $node: $(<"$SCRATCH/once-$node.log")"
}

# agent_start NODE [FLAG...]: a long-running agent on NODE, logging to $SCRATCH/agent-NODE.log.
agent_start() {
  local node=$1
  shift
  # shellcheck disable=SC2046 # one flag per word
  in_ns "$node" "$KIPVS" run $(agent_flags "$node") --cluster-cidr "$CLUSTER_CIDR,$CLUSTER_CIDR6" \
    --ipvs-sync-period 3s --ipvs-min-sync-period 0s \
    --healthz-bind-address 0.0.0.0:10256 --metrics-bind-address 127.0.0.1:0 --log-level debug "$@" \
    >"$SCRATCH/agent-$node.log" 2>&1 &
  AGENT_PIDS[$node]=$!
}

# log_count NODE TEXT: how often TEXT occurs in NODE's agent log, counted without a process:
# the length the log loses when every TEXT goes, over TEXT's length.
log_count() {
  local log without
  log=$(<"$SCRATCH/agent-$1.log")
  without=${log//"$2"/}
  echo $(((${#log} - ${#without}) / ${#2}))
}

# agent_wait_syncs NODE N [SECONDS]: until NODE's agent has logged N more syncs than now. Three
# failed syncs meanwhile end the wait: the agent will not get further by retrying.
agent_wait_syncs() {
  local node=$1 want failed
  want=$(($(log_count "$node" '] synced') + $2))
  failed=$(($(log_count "$node" 'sync failed') + 3))
  local deadline=$((SECONDS + ${3:-60}))
  while (($(log_count "$node" '] synced') < want)); do
    kill -0 "${AGENT_PIDS[$node]}" 2>/dev/null || fail "the agent on node $node exited: $(tail -n 20 "$SCRATCH/agent-$node.log")"
    ((SECONDS < deadline)) || fail "no sync on node $node within ${3:-60}s: $(tail -n 20 "$SCRATCH/agent-$node.log")"
    (($(log_count "$node" 'sync failed') < failed)) ||
      fail "the agent on node $node fails to sync: $(tail -n 5 "$SCRATCH/agent-$node.log")"
    nap 0.2
  done
}

# agents_log_tail: what each agent last logged, but for the syncs that changed nothing.
agents_log_tail() {
  local node
  for node in "${!AGENT_PIDS[@]}"; do
    echo "--- last lines of the agent's log on node $node"
    grep -v 'synced, nothing changed$' "$SCRATCH/agent-$node.log" | tail -n 30 || true
  done
}
