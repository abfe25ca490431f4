#!/usr/bin/env bash
# Every packet path a Service has in a cluster, through real agents on two nodes, with real TCP
# and UDP, each checking the source address the pod saw: ClusterIPs from pods (same node,
# other node, the pod itself) and from the node; NodePorts from outside to pods on either
# node; externalTrafficPolicy Local (client address kept, local endpoints only, every endpoint
# for in-cluster clients, the health-check node port); the virtual IP filter;
# loadBalancerSourceRanges; UDP conntrack cleanup; kipvs' nf_tables table restored after
# tampering; ClusterIPs, NodePorts and the virtual IP filter over IPv6 too, through dual-stack
# Services. One line per path, ok or FAIL, so that a reader sees which path broke.
source "$(dirname "$0")/topology.sh"

readonly CIP_A=10.96.0.10 CIP_B=10.96.0.11 CIP_SELF=10.96.0.12 CIP_DNS=10.96.0.18
readonly CIP_A6=fd00:96::10 CIP_B6=fd00:96::11 CIP_SELF6=fd00:96::12
readonly NP_A=30081 NP_B=30082 NP_LOCAL=30083 NP_LOCAL_B=30084 NP_RANGES=30085
readonly LB_LOCAL=192.168.60.15 LB_LOCAL_B=192.168.60.16 LB_RANGES=192.168.60.17
readonly HC_LOCAL=32000 HC_LOCAL_B=32001
# A host process on node A listens on this port of every address, cluster IPs included.
readonly HOST_PORT=9999
# The UDP flow of the conntrack check: its fixed source port.
readonly FLOW_PORT=40053
# What a pod sees when node A masquerades: one of node A's own addresses (a regex).
readonly NODE_A_SOURCES="(${CNI_A//./\\.}|${NODE_A//./\\.})" NODE_A_SOURCES6="($CNI_A6|$NODE_A6)"
# How long a request waits for its answer: what a broken path costs. The checks that expect
# silence wait SILENCE out.
readonly WAIT=5 SILENCE=3
FAILURES=0

ok() {
  echo "ok   $*"
}

bad() {
  echo "FAIL $*"
  FAILURES=$((FAILURES + 1))
}

# check WHAT FROM PROTO ADDRESS PORT POD SOURCE_REGEX [PEER_OPTION...]: one request; the pod POD
# must answer and have seen a source matching SOURCE_REGEX.
check() {
  local what=$1 from=$2 proto=$3 address=$4 port=$5 pod=$6 source=$7
  shift 7
  local answer
  answer=$(peer "$from" "$proto" "$address" "$port" --timeout "$WAIT" "$@")
  if [[ $answer =~ ^$pod\ $source$ ]]; then
    ok "$what ($proto): $pod saw ${answer#* }"
  else
    bad "$what ($proto): expected $pod to answer, seeing $source; got: $answer"
  fi
}

# check_both WHAT FROM ADDRESS PORT POD SOURCE_REGEX: check over TCP, then UDP.
check_both() {
  local what=$1
  shift
  check "$what" "$1" tcp "${@:2}"
  check "$what" "$1" udp "${@:2}"
}

# check_many COUNT WHAT FROM PROTO ADDRESS PORT POD SOURCE_REGEX: COUNT requests, each a new
# connection or source port, every one answered by POD (round robin over two endpoints would
# send half elsewhere).
check_many() {
  local count=$1 what=$2 from=$3 proto=$4 address=$5 port=$6 pod=$7 source=$8
  local i answer answers=()
  for ((i = 0; i < count; i++)); do
    answer=$(peer "$from" "$proto" "$address" "$port" --timeout "$WAIT")
    answers+=("$answer")
    [[ $answer =~ ^$pod\ $source$ ]] || {
      bad "$what ($proto): expected $pod to answer every one of $count, seeing $source; got: ${answers[*]}"
      return
    }
  done
  ok "$what ($proto): $count answers from $pod, which saw ${answer#* }"
}

# check_refused WHAT FROM PROTO ADDRESS PORT [ALSO]: the request must be refused; ALSO names
# another acceptable outcome (timeout, for a drop).
check_refused() {
  local what=$1 from=$2 proto=$3 address=$4 port=$5 also=${6:-refused}
  local answer
  answer=$(peer "$from" "$proto" "$address" "$port" --timeout "$SILENCE")
  if [[ $answer == refused || $answer == "$also" ]]; then
    ok "$what ($proto): $answer"
  else
    bad "$what ($proto): expected refused${6:+ or $6}; got: $answer"
  fi
}

# eventually SECONDS COMMAND...: until COMMAND succeeds.
eventually() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    nap 0.5
  done
}

# ---------------------------------------------------------------------------- the cluster

write_manifests() {
  local ports=TCP:80:8080,UDP:80:8080
  dual_stack_yaml web-a "$CIP_A" "$CIP_A6" "" "" "$ports" a2 | manifest_write web-a
  dual_stack_yaml web-b "$CIP_B" "$CIP_B6" "" "" "$ports" b1 | manifest_write web-b
  dual_stack_yaml self "$CIP_SELF" "$CIP_SELF6" "" "" "$ports" a1 | manifest_write self
  dual_stack_yaml np-a 10.96.0.13 fd00:96::13 "  type: NodePort" "" "TCP:80:8080:$NP_A,UDP:80:8080:$NP_A" a2 |
    manifest_write np-a
  dual_stack_yaml np-b 10.96.0.14 fd00:96::14 "  type: NodePort" "" "TCP:80:8080:$NP_B,UDP:80:8080:$NP_B" b1 |
    manifest_write np-b
  local_yaml a2 b1 | manifest_write local
  load_balancer_yaml local-b 10.96.0.16 "$LB_LOCAL_B" "$NP_LOCAL_B" "  externalTrafficPolicy: Local
  healthCheckNodePort: $HC_LOCAL_B" b1 | manifest_write local-b
  load_balancer_yaml ranges 10.96.0.17 "$LB_RANGES" "$NP_RANGES" "  loadBalancerSourceRanges: [$CLIENT/32]" a2 |
    manifest_write ranges
  dns_yaml a2 | manifest_write dns
}

# load_balancer_yaml NAME CLUSTER_IP LB_IP NODE_PORT EXTRA_SPEC POD...
load_balancer_yaml() {
  local name=$1 cluster_ip=$2 lb_ip=$3 node_port=$4 extra=$5
  shift 5
  service_yaml "$name" "  type: LoadBalancer
  clusterIP: $cluster_ip
$extra" "status:
  loadBalancer:
    ingress: [{ip: $lb_ip}]" "TCP:80:8080:$node_port,UDP:80:8080:$node_port" "$@"
}

# local_yaml POD...: the externalTrafficPolicy Local Service, over these pods.
local_yaml() {
  load_balancer_yaml local 10.96.0.15 "$LB_LOCAL" "$NP_LOCAL" "  externalTrafficPolicy: Local
  healthCheckNodePort: $HC_LOCAL" "$@"
}

# dns_yaml POD: a UDP-only ClusterIP.
dns_yaml() {
  service_yaml dns "  clusterIP: $CIP_DNS" "" UDP:53:8053 "$1"
}

setup() {
  local start=$SECONDS
  topology_up
  # Load balancers' addresses are routed to node A, as a cloud's would be to some node; the
  # client reaches cluster IPs through node A too, to meet the virtual IP filter.
  route_add client 192.168.60.0/24 "$NODE_A"
  route_add client2 192.168.60.0/24 "$NODE_A"
  route_add client 10.96.0.0/16 "$NODE_A"
  route_add client fd00:96::/64 "$NODE_A6"
  write_manifests
  agent_start a
  agent_start b
  serve a1 8080 8053
  serve a2 8080 8053
  serve b1 8080 8053
  serve a "$HOST_PORT"
  agent_wait_syncs a 1 120
  agent_wait_syncs b 1 120
  echo "setup: topology, peers and both agents' first syncs in $((SECONDS - start))s"
}

# ---------------------------------------------------------------------------- the paths

cluster_ips() {
  check_both "pod a1 -> ClusterIP -> pod a2 on node A" a1 "$CIP_A" 80 a2 "$POD_A1"
  check_both "pod a1 -> ClusterIP -> pod b1 on node B" a1 "$CIP_B" 80 b1 "$POD_A1"
  check_both "pod a1 -> ClusterIP -> itself (hairpin: sees node A, not itself)" a1 "$CIP_SELF" 80 a1 "$NODE_A_SOURCES"
  check_both "node A -> ClusterIP -> pod b1 on node B (masqueraded)" a "$CIP_B" 80 b1 "$NODE_A_SOURCES"
  check_both "client -> ClusterIP via node A -> pod b1 on node B (outside the cluster CIDR: masqueraded)" client \
    "$CIP_B" 80 b1 "$NODE_A_SOURCES"
}

node_ports() {
  check_both "client -> NodePort on node A -> pod a2 on node A" client "$NODE_A" "$NP_A" a2 "$NODE_A_SOURCES"
  check_both "client -> NodePort on node A -> pod b1 on node B" client "$NODE_A" "$NP_B" b1 "$NODE_A_SOURCES"
}

local_policy() {
  check_many 4 "client -> Local NodePort on node A -> only pod a2, client address kept" client tcp \
    "$NODE_A" "$NP_LOCAL" a2 "$CLIENT"
  check_many 2 "client -> Local NodePort on node A -> only pod a2, client address kept" client udp \
    "$NODE_A" "$NP_LOCAL" a2 "$CLIENT"
  check_many 4 "client -> Local load balancer IP via node A -> only pod a2, client address kept" client tcp \
    "$LB_LOCAL" 80 a2 "$CLIENT"
  check_many 2 "client -> Local load balancer IP via node A -> only pod a2, client address kept" client udp \
    "$LB_LOCAL" 80 a2 "$CLIENT"
  check_both "pod a1 -> load balancer IP of a Local Service whose endpoint is on node B" a1 \
    "$LB_LOCAL_B" 80 b1 '.*'
  check_both "node A -> load balancer IP of a Local Service whose endpoint is on node B" a \
    "$LB_LOCAL_B" 80 b1 '.*'
}

vip_filter() {
  check "host process on node A answers on its own address" client tcp "$NODE_A" "$HOST_PORT" a "$CLIENT"
  check_refused "pod a1 -> ClusterIP, a port with no Service, a host process listening" a1 tcp "$CIP_A" "$HOST_PORT"
  check_refused "pod a1 -> ClusterIP, a port with no Service, a host process listening" a1 udp "$CIP_A" "$HOST_PORT"
  check_refused "client -> ClusterIP, a port with no Service, a host process listening" client tcp "$CIP_A" "$HOST_PORT"
}

# IPv6 through the same agents: the dual-stack Services' second cluster IPs and node A's IPv6
# node port address.
cluster_ips6() {
  check_both "pod a1 -> ClusterIPv6 -> pod a2 on node A" a1 "$CIP_A6" 80 a2 "$POD_A16"
  check_both "pod a1 -> ClusterIPv6 -> pod b1 on node B" a1 "$CIP_B6" 80 b1 "$POD_A16"
  check_both "pod a1 -> ClusterIPv6 -> itself (hairpin: sees node A, not itself)" a1 "$CIP_SELF6" 80 a1 \
    "$NODE_A_SOURCES6"
  check_both "node A -> ClusterIPv6 -> pod b1 on node B (masqueraded)" a "$CIP_B6" 80 b1 "$NODE_A_SOURCES6"
  check_both "client -> ClusterIPv6 via node A -> pod b1 on node B (outside the cluster CIDR: masqueraded)" client \
    "$CIP_B6" 80 b1 "$NODE_A_SOURCES6"
}

node_ports6() {
  check_both "client -> NodePort on node A's IPv6 address -> pod a2 on node A" client "$NODE_A6" "$NP_A" a2 \
    "$NODE_A_SOURCES6"
  check_both "client -> NodePort on node A's IPv6 address -> pod b1 on node B" client "$NODE_A6" "$NP_B" b1 \
    "$NODE_A_SOURCES6"
}

vip_filter6() {
  check "host process on node A answers on its own IPv6 address" client tcp "$NODE_A6" "$HOST_PORT" a "$CLIENT6"
  check_refused "pod a1 -> ClusterIPv6, a port with no Service, a host process listening" a1 tcp "$CIP_A6" "$HOST_PORT"
  check_refused "pod a1 -> ClusterIPv6, a port with no Service, a host process listening" a1 udp "$CIP_A6" "$HOST_PORT"
  check_refused "client -> ClusterIPv6, a port with no Service, a host process listening" client tcp "$CIP_A6" \
    "$HOST_PORT"
}

source_ranges() {
  check_both "client in loadBalancerSourceRanges -> load balancer IP -> pod a2" client "$LB_RANGES" 80 a2 '.*'
  check_refused "client2 outside loadBalancerSourceRanges -> load balancer IP" client2 tcp "$LB_RANGES" 80 timeout
  check_refused "client2 outside loadBalancerSourceRanges -> load balancer IP" client2 udp "$LB_RANGES" 80 timeout
}

# health_is PORT STATUS LOCAL_ENDPOINTS: the health-check node port's answer on node A.
health_is() {
  local response
  response=$(peer client http "$NODE_A" "$1" / --timeout "$WAIT")
  HEALTH_RESPONSE=$response
  [[ $response =~ ^HTTP/1\.[01]\ $2 && $response =~ \"localEndpoints\":\ *$3[^0-9] ]] || return 1
  # kube-proxy tells load balancers how many local endpoints to weigh this node by.
  ((${3} == 0)) || [[ ${response,,} =~ x-load-balancing-endpoint-weight:\ *$3 ]]
}

# check_health WHAT PORT STATUS LOCAL_ENDPOINTS [SECONDS]: until the answer is as expected.
check_health() {
  local what=$1 port=$2 status=$3 endpoints=$4
  HEALTH_RESPONSE=
  if eventually "${5:-0}" health_is "$port" "$status" "$endpoints"; then
    ok "$what: $status, localEndpoints $endpoints"
  else
    bad "$what: expected $status with localEndpoints $endpoints; got: $(head -c 600 <<<"$HEALTH_RESPONSE")"
  fi
}

health_check_node_ports() {
  check_health "health-check node port on node A, a local endpoint" "$HC_LOCAL" 200 1 10
  check_health "health-check node port on node A, no local endpoint" "$HC_LOCAL_B" 503 0 10
  # The local endpoint moves to node B: node A's health check turns unhealthy.
  local_yaml b1 | manifest_write local
  check_health "health-check node port on node A after its endpoint moved away" "$HC_LOCAL" 503 0 30
}

# flow_entry: conntrack's entry of the UDP flow pod a1 -> dns, answered by pod a2.
flow_to_a2() {
  [[ $(conntrack -L -p udp 2>/dev/null) == *"src=$POD_A2 dst=$POD_A1 sport=8053 dport=$FLOW_PORT"* ]]
}

udp_conntrack() {
  check "pod a1 -> UDP ClusterIP -> pod a2, one flow" a1 udp "$CIP_DNS" 53 a2 "$POD_A1" --sport "$FLOW_PORT"
  if flow_to_a2; then
    ok "conntrack lists the flow to pod a2"
  else
    bad "conntrack lists the flow to pod a2: $(conntrack -L -p udp 2>&1)"
  fi
  # The endpoint moves to node B; a stale entry would keep sending the flow to pod a2.
  dns_yaml b1 | manifest_write dns
  if eventually 30 eval '! flow_to_a2'; then
    ok "conntrack entry to the removed endpoint deleted"
  else
    bad "conntrack entry to the removed endpoint deleted: $(conntrack -L -p udp 2>&1)"
  fi
  local answer tries=0
  # IPVS may still drop the first datagram of the old flow while it forgets the old server.
  until answer=$(peer a1 udp "$CIP_DNS" 53 --sport "$FLOW_PORT" --timeout "$WAIT") && [[ $answer == "b1 $POD_A1" ]]; do
    ((++tries < 3)) || break
  done
  if [[ $answer == "b1 $POD_A1" ]]; then
    ok "pod a1 -> UDP ClusterIP, same flow -> pod b1 after the move (udp)"
  else
    bad "pod a1 -> UDP ClusterIP, same flow -> pod b1 after the move (udp): got: $answer"
  fi
}

# table_shape: kipvs' table on node A as "CHAIN:RULES ..." (rule counts per chain, in order),
# which a flush changes and a repair restores; set elements are left out (--terse), since a
# hash set lists them in no fixed order.
table_shape() {
  local listing
  listing=$(nft --terse list table inet kipvs 2>&1) || { echo "nft list table inet kipvs failed: $listing"; return; }
  awk '/^\tchain / { chain = $2; order[++k] = chain; rules[chain] = 0; next }
       chain != "" && /^\t}/ { chain = ""; next }
       chain != "" && NF && $1 != "type" { rules[chain]++ }
       END { for (i = 1; i <= k; i++) printf "%s%s:%d", (i > 1 ? " " : ""), order[i], rules[order[i]] }' <<<"$listing"
}

shape_is() {
  [[ $(table_shape) == "$1" ]]
}

# tamper WHAT NFT_ARGS...: damage the table behind the agent's back; the next resync repairs it.
tamper() {
  local what=$1 before
  shift
  before=$(table_shape)
  # No look at the damage: the agent may repair it before a second nft process starts.
  nft "$@" || { bad "nft $*: failed"; return; }
  if eventually 30 shape_is "$before"; then
    ok "table restored after $what: $before"
  else
    bad "table restored after $what: expected $before; got: $(table_shape)"
    return
  fi
  check "client -> NodePort on node A -> pod b1 after $what" client tcp "$NODE_A" "$NP_B" b1 "$NODE_A_SOURCES"
}

nftables_table() {
  local shape
  shape=$(table_shape)
  if [[ $shape == *:* && $shape != nft\ list* ]]; then
    ok "table inet kipvs on node A, chains and their rule counts: $shape"
  else
    bad "table inet kipvs on node A: ${shape:-no chains}"
    return
  fi
  # An operator's `nft list ruleset` reads every element back as nft's own types describe them.
  local listing
  if listing=$(nft list table inet kipvs 2>&1); then
    ok "nft lists the table with its set elements"
  else
    bad "nft lists the table with its set elements: $(grep -m 1 -E 'Assertion|Error' <<<"$listing" || tail -n 1 <<<"$listing")"
  fi
  # A connection open across both repairs must live on: they rebuild rules, not connections.
  local hold_log=$SCRATCH/hold.log hold_pid
  in_ns client "$PEER" hold "$NODE_A" "$NP_B" --timeout "$WAIT" >"$hold_log" 2>&1 &
  hold_pid=$!
  PIDS+=("$hold_pid")
  tamper "nft flush table" flush table inet kipvs
  tamper "nft delete table" delete table inet kipvs
  held "$hold_pid" "$hold_log"
}

# held PID LOG: the holding client still runs, and answers keep coming from pod b1.
held() {
  local answers before
  mapfile -t answers <"$2"
  before=${#answers[@]}
  nap 2.5
  mapfile -t answers <"$2"
  if kill -0 "$1" 2>/dev/null && ((${#answers[@]} > before)) && [[ ${answers[-1]} == "b1 "* ]]; then
    ok "client -> NodePort on node A -> pod b1, one connection held through both repairs: ${#answers[@]} answers"
  else
    bad "client -> NodePort on node A -> pod b1, one connection held through both repairs: ${answers[*]: -3}"
  fi
}

# ---------------------------------------------------------------------------- main

setup
cluster_ips
node_ports
local_policy
vip_filter
cluster_ips6
node_ports6
vip_filter6
source_ranges
health_check_node_ports
udp_conntrack
nftables_table
if ((FAILURES > 0)); then
  agents_log_tail
  fail "$FAILURES paths broken"
fi
