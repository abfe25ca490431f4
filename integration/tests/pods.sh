# shellcheck shell=bash
# Fake pods, clients and a running agent for the agent-*.sh tests and the demo.
#
# The namespace the script runs in plays the node. A pod is a network namespace on a veth pair
# (10.244.N.2, gateway 10.244.N.1 on the node) running one python process that answers every
# TCP port with an HTTP/1.1 keep-alive server and every UDP port with an echo, both replying
# "POD-NAME PORT". A client is a namespace on its own veth pair (10.99.N.2) whose traffic is
# routed through the node, so each client has a distinct source address, as in a cluster.
#
# Sourced, it only defines helpers. Run as a test, it checks that a pod and a client work.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly NODE_NAME=node-1
# Named network namespaces live in the guest's /run/netns, shared by every test.
readonly NS_PREFIX=kt$$
readonly MANIFEST=$SCRATCH/cluster.yaml
readonly KIPVS_LOG=$SCRATCH/kipvs.log
declare -A POD_IPS=() CLIENT_IPS=()
NAMESPACES=()
PIDS=()
KIPVS_PID=

# Everything started here is stopped on exit, however the test ends.
cleanup_all() {
  agent_stop
  local pid ns
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$SCRATCH"
}
trap cleanup_all EXIT

# A failure shows the end of the agent's log, which usually says why.
fail() {
  echo "FAIL: $*" >&2
  if [[ -s $KIPVS_LOG ]]; then
    echo "--- last lines of the kipvs log" >&2
    tail -n 20 "$KIPVS_LOG" >&2
  fi
  exit 1
}

# wait_for SECONDS WHAT COMMAND...: polls COMMAND until it succeeds.
wait_for() {
  local seconds=$1 what=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    ((SECONDS < deadline)) || fail "no $what after ${seconds}s"
    sleep 0.2
  done
}

# ---------------------------------------------------------------------------- python programs

cat >"$SCRATCH/pod.py" <<'PY'
"""pod.py NAME READY_FILE TCP_PORTS UDP_PORTS: answers with "NAME PORT" on every port."""
import http.server
import socket
import sys
import threading

name, ready_file = sys.argv[1], sys.argv[2]
tcp_ports = [int(p) for p in sys.argv[3].split(",") if p]
udp_ports = [int(p) for p in sys.argv[4].split(",") if p]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so that a client can hold a connection open

    def do_GET(self):
        body = f"{name} {self.server.server_address[1]}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # tests reset connections on purpose


def udp_echo(sock, port):
    while True:
        _, peer = sock.recvfrom(2048)
        sock.sendto(f"{name} {port}\n".encode(), peer)


threads = []
for port in tcp_ports:
    server = Server(("", port), Handler)
    threads.append(threading.Thread(target=server.serve_forever, daemon=True))
for port in udp_ports:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("", port))
    threads.append(threading.Thread(target=udp_echo, args=(sock, port), daemon=True))
for thread in threads:
    thread.start()
open(ready_file, "w").close()  # every port is bound
threading.Event().wait()
PY

cat >"$SCRATCH/client.py" <<'PY'
"""client.py http HOST PORT COUNT | udp HOST PORT COUNT | hold HOST PORT

http and udp: COUNT requests, each on a new connection or socket (so each is scheduled
afresh), one answer per line, "error ..." for a request that got none.
hold: keeps connections open, driven by lines on stdin, one answer line per command:
  open      a new connection and a request on it; prints the answer
  get N     another request on connection N; prints the answer
  reset N   closes connection N with a RST (IPVS then forgets it within seconds,
            where a FIN would leave it in TIME_WAIT for two minutes); prints "ok"
"""
import http.client
import socket
import struct
import sys

TIMEOUT = 5


def request(conn):
    conn.request("GET", "/")
    return conn.getresponse().read().decode().strip()


def http_many(host, port, count):
    for _ in range(count):
        conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
        try:
            print(request(conn), flush=True)
        except OSError as error:
            print(f"error {error}", flush=True)
        finally:
            conn.close()


def udp_many(host, port, count):
    for _ in range(count):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(TIMEOUT)
            try:
                sock.sendto(b"?", (host, port))
                print(sock.recv(2048).decode().strip(), flush=True)
            except OSError as error:
                print(f"error {error}", flush=True)


def hold(host, port):
    conns = []
    for line in sys.stdin:
        words = line.split()
        try:
            if words[0] == "open":
                conns.append(http.client.HTTPConnection(host, port, timeout=TIMEOUT))
                answer = request(conns[-1])
            elif words[0] == "get":
                answer = request(conns[int(words[1])])
            elif words[0] == "reset":
                sock = conns[int(words[1])].sock
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
                answer = "ok"
            else:
                answer = f"error unknown command {words[0]}"
        except (OSError, http.client.HTTPException, IndexError, ValueError) as error:
            answer = f"error {error!r}"
        print(answer, flush=True)


mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "http":
    http_many(host, port, int(sys.argv[4]))
elif mode == "udp":
    udp_many(host, port, int(sys.argv[4]))
else:
    hold(host, port)
PY

# ---------------------------------------------------------------------------- pods and clients

# veth_namespace NS HOST_IFACE NODE_ADDRESS NS_ADDRESS: a namespace wired to the node,
# its default route through it.
veth_namespace() {
  local ns=$1 host=$2 node_address=$3 address=$4
  ip netns add "$ns"
  NAMESPACES+=("$ns")
  ip link add "$host" type veth peer name eth0 netns "$ns"
  ip addr add "$node_address/24" dev "$host"
  ip link set "$host" up
  ip -n "$ns" addr add "$address/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  ip -n "$ns" route add default via "$node_address"
}

# pod_add NAME INDEX [TCP_PORTS [UDP_PORTS]]: pod NAME at 10.244.INDEX.2 serving the
# comma-separated ports (default TCP 8080). Wait for it with pods_wait_ready.
pod_add() {
  local name=$1 index=$2 tcp=${3-8080} udp=${4-}
  local ns=$NS_PREFIX-$name
  veth_namespace "$ns" "vp$index" "10.244.$index.1" "10.244.$index.2"
  POD_IPS[$name]=10.244.$index.2
  ip netns exec "$ns" python3 "$SCRATCH/pod.py" "$name" "$SCRATCH/$name.ready" "$tcp" "$udp" \
    2>>"$SCRATCH/$name.log" &
  PIDS+=($!)
}

pod_ip() {
  [[ -n ${POD_IPS[$1]-} ]] || fail "no pod named $1"
  echo "${POD_IPS[$1]}"
}

pods_ready() {
  local name
  for name in "${!POD_IPS[@]}"; do [[ -e $SCRATCH/$name.ready ]] || return 1; done
}

pods_wait_ready() {
  wait_for 30 "listening server in every pod" pods_ready
}

# client_add NAME INDEX: a client namespace at 10.99.INDEX.2.
client_add() {
  local name=$1 index=$2
  veth_namespace "$NS_PREFIX-$name" "vc$index" "10.99.$index.1" "10.99.$index.2"
  CLIENT_IPS[$name]=10.99.$index.2
}

# in_client NAME COMMAND...
in_client() {
  [[ -n ${CLIENT_IPS[$1]-} ]] || fail "no client named $1"
  local ns=$NS_PREFIX-$1
  shift
  ip netns exec "$ns" "$@"
}

# http_get CLIENT HOST PORT COUNT: COUNT answers ("pod-a 8080"), one connection each.
http_get() {
  in_client "$1" python3 "$SCRATCH/client.py" http "$2" "$3" "$4"
}

# udp_ask CLIENT HOST PORT COUNT: COUNT answers, one socket (source port) each.
udp_ask() {
  in_client "$1" python3 "$SCRATCH/client.py" udp "$2" "$3" "$4"
}

# tally < ANSWERS: "pod-a 10, pod-b 10, pod-c 10" (errors count as "error").
tally() {
  awk '{ n[$1]++ } END { for (p in n) print p, n[p] }' | sort | paste -sd, - | sed 's/,/, /g'
}

# count_of POD < ANSWERS
count_of() {
  awk -v pod="$1" '$1 == pod { n++ } END { print n + 0 }'
}

# distinct < ANSWERS: the pods that answered, one per line.
distinct() {
  awk '{ print $1 }' | sort -u
}

# hold_start CLIENT HOST PORT: a client process that holds connections open (see client.py);
# drive it with hold.
hold_start() {
  [[ -n ${CLIENT_IPS[$1]-} ]] || fail "no client named $1"
  local ns=$NS_PREFIX-$1
  coproc HOLDER { exec ip netns exec "$ns" python3 "$SCRATCH/client.py" hold "$2" "$3"; }
  PIDS+=("$HOLDER_PID")
}

# hold COMMAND: one command to the holder; prints its answer, fails on an error answer.
hold() {
  local answer
  echo "$*" >&"${HOLDER[1]}"
  read -r -t 20 answer <&"${HOLDER[0]}" || fail "the connection holder did not answer '$*'"
  [[ $answer != error* ]] || fail "connection holder, '$*': $answer"
  echo "$answer"
}

# node_address_add ADDRESS: an address of the node's own, as a NIC would carry it; external
# clients reach it through their route to the node.
node_address_add() {
  ip link add node0 type dummy
  ip addr add "$1/32" dev node0
  ip link set node0 up
}

# ---------------------------------------------------------------------------- manifests

# manifest_write < YAML: replaces the agent's input in one step (a rename), so that the agent
# never reads a half-written file.
manifest_write() {
  cat >"$MANIFEST.new"
  mv -f "$MANIFEST.new" "$MANIFEST"
}

# slice_yaml SERVICE PORTS ENDPOINT...: an EndpointSlice of SERVICE whose endpoints (pod names
# or addresses) are ready on this node. PORTS: comma-separated NAME:NUMBER[:PROTOCOL], NAME
# empty for a Service's single unnamed port.
slice_yaml() {
  local service=$1 ports=$2
  shift 2
  local spec name number protocol endpoint address
  cat <<YAML
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: $service-x1
  namespace: default
  labels: {kubernetes.io/service-name: $service}
addressType: IPv4
ports:
YAML
  for spec in ${ports//,/ }; do
    IFS=: read -r name number protocol <<<"$spec"
    echo "- {name: \"$name\", port: $number, protocol: ${protocol:-TCP}}"
  done
  if (($#)); then echo "endpoints:"; else echo "endpoints: []"; fi
  for endpoint in "$@"; do
    address=$endpoint
    [[ $endpoint =~ ^[0-9.]+$ ]] || address=$(pod_ip "$endpoint")
    printf -- '- addresses: [%s]\n  conditions: {ready: true}\n  nodeName: %s\n' "$address" "$NODE_NAME"
  done
}

# ---------------------------------------------------------------------------- the agent

# agent_start [FLAG...]: `kipvs run` on $MANIFEST in the background, logging to $KIPVS_LOG.
# shellcheck disable=SC2120 # the flags are optional
agent_start() {
  "$KIPVS" run --source "file:$MANIFEST" --hostname-override "$NODE_NAME" "$@" >>"$KIPVS_LOG" 2>&1 &
  KIPVS_PID=$!
}

# agent_stop: SIGTERM, as a kubelet stops it, then SIGKILL if it lingers.
agent_stop() {
  [[ -n $KIPVS_PID ]] || return 0
  local pid=$KIPVS_PID tries=0
  KIPVS_PID=
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null && ((tries++ < 50)); do sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

agent_alive() {
  [[ -n $KIPVS_PID ]] && kill -0 "$KIPVS_PID" 2>/dev/null
}

# has_rule LINE. (grep reads a here-string, not a pipe: with pipefail, grep -q leaving early
# would make a writer still writing die of SIGPIPE and the match count as a failure.)
has_rule() {
  agent_alive || fail "kipvs exited"
  grep -qxF -- "$1" <<<"$(ipvsadm -Sn)"
}

lacks_rule() {
  ! has_rule "$1"
}

# wait_rule LINE: until `ipvsadm -Sn` shows LINE (the file is re-read within about a second).
wait_rule() {
  wait_for 20 "rule '$1'" has_rule "$1"
}

# wait_no_rule LINE [SECONDS]
wait_no_rule() {
  wait_for "${2:-20}" "removal of rule '$1'" lacks_rule "$1"
}

# wait_no_text TEXT [SECONDS]: until no line of `ipvsadm -Sn` contains TEXT.
wait_no_text() {
  wait_for "${2:-20}" "removal of every rule with '$1'" lacks_text "$1"
}

lacks_text() {
  agent_alive || fail "kipvs exited"
  ! grep -qF -- "$1" <<<"$(ipvsadm -Sn)"
}

# log_records: the agent's log, one record per line; a message that spans lines (a YAML
# parser's error quotes the input) is joined onto its first line with " | ".
log_records() {
  awk '/^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T/ { if (r != "") print r; r = $0; next }
       { r = r " | " $0 }
       END { if (r != "") print r }' "$KIPVS_LOG"
}

# log_count REGEX: records of the agent's log that match.
log_count() {
  log_records | grep -cE -- "$1" || true
}

# Syncs that wrote something log "synced" at info; the others "synced, nothing changed" at debug.
readonly SYNC_LINE='\] synced(, nothing changed)?$'
# shellcheck disable=SC2034 # for the tests that source this file
readonly WRITING_SYNC_LINE='^[^ ]+ info .*\] synced$'

# wait_syncs N: until N more syncs than now have been logged (needs --log-level debug).
wait_syncs() {
  local want=$(($(log_count "$SYNC_LINE") + $1))
  wait_for 30 "$1 more syncs" log_count_at_least "$SYNC_LINE" "$want"
}

log_count_at_least() {
  (($(log_count "$1") >= $2))
}

# ---------------------------------------------------------------------------- self-test

pods_self_test() {
  pod_add pod-a 1 8080,8081 5353
  client_add client 1
  pods_wait_ready
  # The node reaches the pod directly; the client reaches it through the node.
  assert_eq "pod-a 8081" "$(python3 "$SCRATCH/client.py" http 10.244.1.2 8081 1)" "HTTP from the node"
  sysctl -qw net.ipv4.ip_forward=1
  assert_eq "pod-a 8080" "$(http_get client 10.244.1.2 8080 1)" "HTTP from a client"
  assert_eq "pod-a 5353" "$(udp_ask client 10.244.1.2 5353 1)" "UDP from a client"
  hold_start client 10.244.1.2 8080
  assert_eq "pod-a 8080" "$(hold open)" "held connection"
  assert_eq "pod-a 8080" "$(hold get 0)" "second request on the held connection"
  assert_eq ok "$(hold reset 0)" "reset of the held connection"
  assert_eq "pod-a 2, pod-b 1" "$(printf 'pod-a 1\npod-b 1\npod-a 1\n' | tally)" "tally"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then pods_self_test; fi
