#!/usr/bin/env bash
# Soak: the agent SIGKILLed again and again while its input keeps changing (one manifest file's
# endpoints rewritten, by rename, every ~200 ms). Each cycle kills a running agent 50-700 ms
# after it applied a change, then a starting one 50-700 ms after its exec or (every other cycle)
# after it logged "starting", then starts a third that must converge to the input as it then
# stands (the writer pauses for that check). All along, a TCP connection through a Service whose
# input never changes echoes a line every 100 ms, and its virtual server, real server and virtual
# IP never go away: no restart flushes or re-creates what is already right.
#
#   SOAK_KILLS (10; make bench runs 50), SOAK_SEED (random; repeats the kill moments); through
#   uml.sh, which passes the guest only KIPVS* variables, KIPVS_SOAK_KILLS and KIPVS_SOAK_SEED.
source "$(dirname "$0")/pods.sh"

readonly KILLS=${SOAK_KILLS:-${KIPVS_SOAK_KILLS:-10}} SEED=${SOAK_SEED:-${KIPVS_SOAK_SEED:-$RANDOM}}
readonly STABLE_VIP=10.96.0.80 CHURN_VIP=10.96.0.81 ECHO_PORT=7007
readonly INPUT=$SCRATCH/cluster.d
RANDOM=$SEED

cat >"$SCRATCH/echo.py" <<'PY'
"""echo.py server PORT READY_FILE | client HOST PORT STATUS_FILE

server: echoes every line back, on every TCP connection.
client: one TCP connection; a numbered line every 100 ms, each echo checked within 5 s. Writes
"connected" to STATUS_FILE after the first echo; on SIGTERM "echoed N" and exits 0; at the
first failure "failed after N echoes: WHY" and exits 1.
"""
import signal
import socket
import socketserver
import sys
import time


class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(line)


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class Stop(Exception):
    pass


def stop(*_):
    raise Stop()


def status(path, text):
    with open(path, "w") as f:
        f.write(text + "\n")


def client(host, port, path):
    echoed = 0
    signal.signal(signal.SIGTERM, stop)
    try:
        sock = socket.create_connection((host, port), timeout=5)
        lines = sock.makefile("rb")
        while True:
            sent = f"{echoed}\n".encode()
            sock.sendall(sent)
            answer = lines.readline()
            if answer != sent:
                raise OSError(f"sent {sent!r}, got {answer!r}")
            echoed += 1
            if echoed == 1:
                status(path, "connected")
            time.sleep(0.1)
    except Stop:
        status(path, f"echoed {echoed}")
    except OSError as error:
        status(path, f"failed after {echoed} echoes: {error!r}")
        sys.exit(1)


if sys.argv[1] == "server":
    server = Server(("", int(sys.argv[2])), Echo)
    open(sys.argv[3], "w").close()
    server.serve_forever()
else:
    client(sys.argv[2], int(sys.argv[3]), sys.argv[4])
PY

# ---------------------------------------------------------------------------- input

stable_yaml() {
  cat <<YAML
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: default}
spec:
  clusterIP: $STABLE_VIP
  ports: [{name: echo, port: 80, targetPort: $ECHO_PORT}]
$(slice_yaml echo "echo:$ECHO_PORT" 10.244.1.2)
YAML
}

# churn_write: the churning Service with a random non-empty set of 10.244.200.1-6 as endpoints,
# TCP and UDP, renamed into place (a name with a dot first is not read).
churn_write() {
  local i endpoints=""
  for i in 1 2 3 4 5 6; do
    ((RANDOM % 2)) && endpoints+="- {addresses: [10.244.200.$i], conditions: {ready: true}, nodeName: $NODE_NAME}"$'\n'
  done
  [[ -n $endpoints ]] || endpoints="- {addresses: [10.244.200.1], conditions: {ready: true}, nodeName: $NODE_NAME}"$'\n'
  cat >"$INPUT/.churn.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: churn, namespace: default}
spec:
  clusterIP: $CHURN_VIP
  ports: [{name: web, port: 80, targetPort: 8080}, {name: dns, port: 53, protocol: UDP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: churn-x1
  namespace: default
  labels: {kubernetes.io/service-name: churn}
addressType: IPv4
ports: [{name: web, port: 8080, protocol: TCP}, {name: dns, port: 53, protocol: UDP}]
endpoints:
$endpoints
YAML
  mv -f "$INPUT/.churn.yaml" "$INPUT/churn.yaml"
}

# The writer runs until asked to stop, and is waited for: a writer killed outright could leave
# its last rename still to happen. (Its subshell draws from a reseeded RANDOM: the endpoints
# need not repeat with the seed.)
CHURN_PID=
churn_start() {
  rm -f "$SCRATCH/churn.stop"
  (while [[ ! -e $SCRATCH/churn.stop ]]; do
    churn_write
    sleep 0.2
  done) &
  CHURN_PID=$!
}

churn_stop() {
  : >"$SCRATCH/churn.stop"
  wait "$CHURN_PID"
  CHURN_PID=
}
trap '[[ -z $CHURN_PID ]] || kill "$CHURN_PID" 2>/dev/null; cleanup_all' EXIT

# expected_state: what kernel_state must show for the input as it stands, sorted as it sorts.
expected_state() {
  local address addresses
  mapfile -t addresses < <(grep -oE '10\.244\.200\.[0-9]+' "$INPUT/churn.yaml")
  {
    echo "-A -t $STABLE_VIP:80 -s rr"
    echo "-a -t $STABLE_VIP:80 -r 10.244.1.2:$ECHO_PORT -m -w 1"
    echo "-A -t $CHURN_VIP:80 -s rr"
    echo "-A -u $CHURN_VIP:53 -s rr"
    for address in "${addresses[@]}"; do
      echo "-a -t $CHURN_VIP:80 -r $address:8080 -m -w 1"
      echo "-a -u $CHURN_VIP:53 -r $address:53 -m -w 1"
    done
    echo "kipvs0 $STABLE_VIP/32"
    echo "kipvs0 $CHURN_VIP/32"
  } | LC_ALL=C sort
}

# ---------------------------------------------------------------------------- agent

# start_agent: also marks the log where this agent's records begin (one killed early logs nothing).
start_agent() {
  printf '%(%Y-%m-%dT%H:%M:%S%z)T info soak: [test] agent started\n' -1 >>"$KIPVS_LOG"
  "$KIPVS" run --source "file:$INPUT" --hostname-override "$NODE_NAME" --log-level debug \
    --ipvs-min-sync-period 100ms >>"$KIPVS_LOG" 2>&1 &
  KIPVS_PID=$!
}

# agent_syncs [writing]: the syncs the current agent has logged; with "writing", those that wrote.
agent_syncs() {
  awk -v writing="${1-}" '/\] agent started$/ { n = 0 }
    /\] synced$/ || (writing == "" && /\] synced, nothing changed$/) { n++ }
    END { print n + 0 }' "$KIPVS_LOG"
}

# agent_logged REGEXP: whether the current agent has logged a record matching the awk REGEXP.
agent_logged() {
  awk -v pattern="$1" '/\] agent started$/ { n = 0 } $0 ~ pattern { n++ } END { exit !(n > 0) }' "$KIPVS_LOG"
}

# wait_until COMMAND...: polls every 100 ms, 30 s at most.
wait_until() {
  local deadline=$((SECONDS + 30))
  until "$@"; do
    ((SECONDS < deadline)) || fail "no $* after 30 s"
    agent_alive || fail "kipvs exited"
    sleep 0.1
  done
}

# kill_agent_at START_US DELAY_MS: SIGKILL DELAY_MS after START_US; sets SYNCED to the syncs that
# wrote the killed agent logged.
kill_agent_at() {
  local left=$(($2 - ($(now_us) - $1) / 1000))
  ((left <= 0)) || sleep_ms "$left"
  kill -KILL "$KIPVS_PID" 2>/dev/null || fail "kipvs exited before it was killed"
  wait "$KIPVS_PID" 2>/dev/null || true
  KIPVS_PID=
  SYNCED=$(agent_syncs writing)
}

converged() {
  [[ $(kernel_state) == "$EXPECTED" ]]
}

# restart_and_converge: with the input still, a new agent until it has synced and the kernel
# matches the input (which a killed one may have left right already); records the time from
# its start.
restart_and_converge() {
  churn_stop
  EXPECTED=$(expected_state)
  local start deadline
  start=$(now_us)
  start_agent
  deadline=$((SECONDS + 30))
  until has_synced && converged; do
    if ((SECONDS >= deadline)); then
      kernel_state >"$SCRATCH/state.actual"
      echo "$EXPECTED" >"$SCRATCH/state.expected"
      assert_same_file "$SCRATCH/state.expected" "$SCRATCH/state.actual" "kernel state 30 s after a restart"
      fail "no sync logged 30 s after a restart"
    fi
    agent_alive || fail "kipvs exited after a restart"
    sleep 0.1
  done
  seconds_since "$start" >>"$SCRATCH/converge.times"
}

has_synced() {
  (($(agent_syncs) > 0))
}

wrote_since() {
  (($(agent_syncs writing) > $1))
}

# ---------------------------------------------------------------------------- witnesses

# sampler: every ~500 ms, the unchanged Service's virtual server with its real server, and its
# virtual IP; its packet counter must only grow (a re-created virtual server starts from 0).
sampler() {
  local samples=0 last=0 stats line packets
  trap 'echo "$samples" >"$SCRATCH/samples"; exit 0' TERM
  while :; do
    if stats=$(ipvsadm -Ln --stats --exact -t "$STABLE_VIP:80" 2>&1); then
      packets=
      while read -r _ line _ packets _; do
        [[ $line == "$STABLE_VIP:80" ]] && break
        packets=
      done <<<"$stats"
      if [[ -z $packets ]]; then
        echo "no counters for $STABLE_VIP:80 in: $stats" >>"$SCRATCH/violations"
      elif ((packets < last)); then
        echo "$STABLE_VIP:80 packets went from $last back to $packets: re-created" >>"$SCRATCH/violations"
      else
        last=$packets
      fi
      [[ $stats == *"-> 10.244.1.2:$ECHO_PORT "* ]] ||
        echo "real server 10.244.1.2:$ECHO_PORT missing: $stats" >>"$SCRATCH/violations"
    else
      echo "virtual server $STABLE_VIP:80 missing: $stats" >>"$SCRATCH/violations"
    fi
    [[ $(ip -o -4 addr show dev kipvs0 2>&1) == *" $STABLE_VIP/32 "* ]] ||
      echo "$STABLE_VIP not bound to kipvs0" >>"$SCRATCH/violations"
    samples=$((samples + 1))
    sleep 0.5
  done
}

# intact WHEN: the connection still echoes and the sampler saw nothing go.
intact() {
  [[ ! -s $SCRATCH/violations ]] || fail "$1: $(head -n 5 "$SCRATCH/violations")"
  kill -0 "$CLIENT_PID" 2>/dev/null || fail "$1: the held connection failed: $(cat "$SCRATCH/client.status")"
}

client_connected() {
  kill -0 "$CLIENT_PID" 2>/dev/null || fail "the echo client failed: $(cat "$SCRATCH/client.status" 2>&1)"
  [[ -s $SCRATCH/client.status ]]
}

# ---------------------------------------------------------------------------- setup

echo "soak: seed $SEED (KIPVS_SOAK_SEED=$SEED repeats the kill moments)"
veth_namespace "$NS_PREFIX-echo" vp1 10.244.1.1 10.244.1.2
ip netns exec "$NS_PREFIX-echo" python3 "$SCRATCH/echo.py" server "$ECHO_PORT" "$SCRATCH/echo.ready" \
  2>>"$SCRATCH/echo.log" &
PIDS+=($!)
client_add client 1
mkdir "$INPUT"
stable_yaml >"$INPUT/stable.yaml"
churn_write
wait_for 30 "listening echo server" test -e "$SCRATCH/echo.ready"

: >"$SCRATCH/converge.times"
EXPECTED=$(expected_state)
start_agent
wait_for 30 "first convergence" converged
ip netns exec "$NS_PREFIX-client" python3 "$SCRATCH/echo.py" client "$STABLE_VIP" 80 "$SCRATCH/client.status" \
  2>>"$SCRATCH/client.log" &
CLIENT_PID=$!
PIDS+=("$CLIENT_PID")
wait_for 30 "echo through $STABLE_VIP:80" client_connected
sampler &
SAMPLER_PID=$!
PIDS+=("$SAMPLER_PID")

# ---------------------------------------------------------------------------- kills

kills=0 restarts=0 starting=0 starting_synced=0
report() {
  echo "soak: kills $kills: $((kills - starting)) of a running agent after it applied a change," \
    "$starting of a starting one ($starting_synced after its first sync); restarts converged $restarts"
  echo "soak: seconds from restart to converged: $(median_max <"$SCRATCH/converge.times")"
}

# kill_one WHEN: one kill at a random moment 50-700 ms after now, which is WHEN.
kill_one() {
  local delay
  random_between delay 50 700
  kill_agent_at "$(now_us)" "$delay"
  kills=$((kills + 1))
  intact "kill $kills, ${delay} ms after $1"
  echo "kill $kills: ${delay} ms after $1; it had logged $SYNCED syncs that wrote"
}

while ((kills < KILLS)); do
  # A running agent, once it has applied a change of the input that keeps changing.
  churn_start
  wait_until wrote_since "$(agent_syncs writing)"
  kill_one "it applied a change"
  if ((kills < KILLS)); then
    # A starting one: every other cycle from its exec (the debug build takes longer than 700 ms
    # to get to its first write), else once it says it has started (its first read and sync come
    # next).
    start_agent
    if ((restarts % 2 == 0)); then
      kill_one "its exec"
    else
      wait_until agent_logged '] starting$'
      kill_one "it logged starting"
    fi
    starting=$((starting + 1))
    ((SYNCED == 0)) || starting_synced=$((starting_synced + 1))
  fi
  restart_and_converge
  restarts=$((restarts + 1))
  intact "after restart $restarts"
done

# The connection kept echoing through every kill.
sleep 0.5
intact "at the end"
kill -TERM "$CLIENT_PID"
wait "$CLIENT_PID" || fail "the echo client ended badly: $(cat "$SCRATCH/client.status")"
kill -TERM "$SAMPLER_PID"
wait "$SAMPLER_PID" || true
report
echo "soak: connection kept: yes, $(<"$SCRATCH/client.status");" \
  "$(<"$SCRATCH/samples") samples of $STABLE_VIP:80, none missing"
echo "soak: syncs that wrote: $(grep -cE "$WRITING_SYNC_LINE" "$KIPVS_LOG")," \
  "over $(grep -c '] agent started$' "$KIPVS_LOG") agent starts"
