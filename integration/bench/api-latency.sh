#!/usr/bin/env bash
# Guest side: how long one EndpointSlice change takes from the API server to the kernel. For
# 1,000 and 10,000 Services (each with an EndpointSlice of 3 endpoints) the test API server
# (kube-api-test-server) and the agent (`kipvs run --source kubernetes`) start in a fresh
# network namespace; after the agent's first sync, 30 EndpointSlices get a fourth endpoint one
# at a time, each timed from the admin API call returning (the server has the new version and
# has queued its watch event) to the kernel listing the new real server. The kernel is polled by
# one process over generic netlink (IPVS_CMD_GET_DEST of that one virtual server, what
# `ipvsadm -Ln -t VIP:80` asks), every 2 ms: a new ipvsadm per poll costs some 60 ms in UML.
# Prints figures, the measured poll period among them; asserts nothing.
#
#   api-latency.sh                  both sizes (KIPVS_API_SIZES="1000 10000" by default)
#   api-latency.sh --one SERVICES   one size, in the current namespace (run under unshare -n)
set -euo pipefail

KIPVS=${KIPVS:?path of the kipvs binary}
API_SERVER=${KIPVS_API_SERVER:-$(dirname "$KIPVS")/kube-api-test-server}
readonly KIPVS API_SERVER
readonly CHANGES=${KIPVS_API_CHANGES:-30}
readonly ENDPOINTS=3
readonly API_PORT=16443 ADMIN_PORT=16444
readonly ADMIN=http://127.0.0.1:$ADMIN_PORT/admin

# Objects as the API serves them: Service svc-S at VIP 10.(96+S/62500).(S/250%250).(S%250+1),
# its EndpointSlice svc-S-abc with 3 endpoints. Then one file per change: the slice of a Service
# spread over the range, with a fourth endpoint, and a line "VIP NEW_ADDRESS" per change.
generate() {
  python3 - "$1" "$CHANGES" "$ENDPOINTS" "$2" <<'PY'
import json, os, sys

n, changes, endpoints, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

def vip(s):
    return f"10.{96 + s // 62500}.{s // 250 % 250}.{s % 250 + 1}"

def service(s):
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": f"svc-{s}", "namespace": "bench"},
            "spec": {"type": "ClusterIP", "clusterIP": vip(s), "clusterIPs": [vip(s)], "ipFamilies": ["IPv4"],
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}}

def endpoint(address):
    return {"addresses": [address], "conditions": {"ready": True, "serving": True, "terminating": False},
            "nodeName": "bench-node"}

def slice(s, extra=None):
    addresses = [f"10.{200 + r // 250}.{r % 250}.{s % 250 + 1}" for r in range(endpoints)]
    if extra:
        addresses.append(extra)
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"svc-{s}-abc", "namespace": "bench",
                         "labels": {"kubernetes.io/service-name": f"svc-{s}"}},
            "addressType": "IPv4", "endpoints": [endpoint(a) for a in addresses],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}

items = []
for s in range(n):
    items.append(service(s))
    items.append(slice(s))
with open(os.path.join(out, "objects.json"), "w") as f:
    json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f)
with open(os.path.join(out, "changes"), "w") as index:
    for k in range(changes):
        s = (k * 7919 + 1) % n
        address = f"10.250.{k // 250}.{k % 250 + 1}"
        with open(os.path.join(out, f"change-{k}.json"), "w") as f:
            json.dump(slice(s, address), f)
        index.write(f"{vip(s)} {address}\n")
PY
}

seconds_between() {
  awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'
}

dir='' server_pid='' agent_pid=''

# shellcheck disable=SC2317 # run by the EXIT trap
stop() {
  local pid
  for pid in $agent_pid $server_pid; do
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ -n $dir ]]; then rm -rf "$dir"; fi
}

# One size, in a namespace of its own.
run_one() {
  local services=$1
  dir=$(mktemp -d "${KIPVS_SCRATCH:-/tmp}/api-latency.XXXXXX")
  trap stop EXIT

  generate "$services" "$dir"
  "$API_SERVER" --listen "127.0.0.1:$API_PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
    --kubeconfig-out "$dir/kubeconfig" >/dev/null 2>"$dir/server.log" &
  server_pid=$!
  for _ in $(seq 300); do [[ -s $dir/kubeconfig ]] && break; sleep 0.1; done
  [[ -s $dir/kubeconfig ]] || { echo "the test API server did not start"; cat "$dir/server.log"; return 1; }

  local t0=$EPOCHREALTIME
  curl -sS --fail-with-body --max-time 600 -X POST --data-binary "@$dir/objects.json" "$ADMIN/apply" >/dev/null
  local t1=$EPOCHREALTIME
  "$KIPVS" run --source kubernetes --kubeconfig "$dir/kubeconfig" --hostname-override bench-node \
    --ipvs-min-sync-period 0s --ipvs-sync-period 1h 2>"$dir/agent.log" &
  agent_pid=$!
  local deadline=$((SECONDS + 600))
  until grep -q '\] synced$' "$dir/agent.log"; do
    kill -0 "$agent_pid" 2>/dev/null || { echo "kipvs exited:"; tail -n 20 "$dir/agent.log"; return 1; }
    ((SECONDS < deadline)) || { echo "no first sync after 600s"; return 1; }
    sleep 0.1
  done
  local t2=$EPOCHREALTIME
  local virtual_servers
  virtual_servers=$(ipvsadm -Sn | grep -c '^-A')

  measure "$dir" "$services" "$virtual_servers" "$(seconds_between "$t0" "$t1")" "$(seconds_between "$t1" "$t2")"
}

# measure DIR SERVICES VIRTUAL_SERVERS APPLY_SECONDS FIRST_SYNC_SECONDS: the changes, timed.
measure() {
  python3 - "$@" "$ADMIN_PORT" "$ENDPOINTS" <<'PY'
import http.client, os, random, socket, struct, sys, time

directory, services, virtual_servers, apply_seconds, first_sync, admin_port, endpoints = sys.argv[1:8]

NETLINK_GENERIC, NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 16, 1, 4, 0x300
NLMSG_ERROR, NLMSG_DONE, GENL_ID_CTRL, CTRL_CMD_GETFAMILY = 2, 3, 0x10, 3
CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME, NLA_F_NESTED = 1, 2, 0x8000
IPVS_CMD_GET_DEST, IPVS_CMD_ATTR_SERVICE, IPVS_CMD_ATTR_DEST = 8, 1, 2
IPVS_SVC_ATTR_AF, IPVS_SVC_ATTR_PROTOCOL, IPVS_SVC_ATTR_ADDR, IPVS_SVC_ATTR_PORT = 1, 2, 3, 4
IPVS_DEST_ATTR_ADDR = 1


def attr(kind, payload):
    header = struct.pack("=HH", 4 + len(payload), kind)
    return header + payload + b"\0" * (-len(payload) % 4)


def attrs(data):
    """(type without flags, payload) of each attribute in data."""
    while len(data) >= 4:
        length, kind = struct.unpack_from("=HH", data)
        yield kind & 0x3FFF, data[4:length]
        data = data[(length + 3) & ~3:]


class IPVS:
    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
        self.sock.bind((0, 0))
        self.seq = 0
        reply = self.request(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, attr(CTRL_ATTR_FAMILY_NAME, b"IPVS\0"), NLM_F_ACK)
        self.family = next(struct.unpack("=H", p[:2])[0] for m in reply for k, p in attrs(m) if k == CTRL_ATTR_FAMILY_ID)

    def request(self, family, command, payload, flags):
        """The genetlink payloads of every reply; [] when the kernel answers with an error."""
        self.seq += 1
        body = struct.pack("=BBH", command, 1, 0) + payload
        self.sock.send(struct.pack("=IHHII", 16 + len(body), family, NLM_F_REQUEST | flags, self.seq, 0) + body)
        messages = []
        while True:
            data = self.sock.recv(1 << 20)
            while len(data) >= 16:
                length, kind, _, seq, _ = struct.unpack_from("=IHHII", data)
                if seq == self.seq:
                    if kind == NLMSG_DONE:
                        return messages
                    if kind == NLMSG_ERROR:
                        error = struct.unpack_from("=i", data, 16)[0]
                        return messages if error == 0 else []
                    messages.append(data[20:length])
                data = data[(length + 3) & ~3:]

    def has_dest(self, vip, port, address):
        """Whether the TCP virtual server vip:port has the real server address (any port)."""
        service = (attr(IPVS_SVC_ATTR_AF, struct.pack("=H", socket.AF_INET))
                   + attr(IPVS_SVC_ATTR_PROTOCOL, struct.pack("=H", socket.IPPROTO_TCP))
                   + attr(IPVS_SVC_ATTR_ADDR, socket.inet_aton(vip) + b"\0" * 12)
                   + attr(IPVS_SVC_ATTR_PORT, struct.pack("!H", port)))
        wanted = socket.inet_aton(address)
        for message in self.request(self.family, IPVS_CMD_GET_DEST, attr(IPVS_CMD_ATTR_SERVICE | NLA_F_NESTED, service), NLM_F_DUMP):
            for kind, dest in attrs(message):
                if kind == IPVS_CMD_ATTR_DEST:
                    if any(k == IPVS_DEST_ATTR_ADDR and p[:4] == wanted for k, p in attrs(dest)):
                        return True
        return False


ipvs = IPVS()
pause = random.Random(1)
admin = http.client.HTTPConnection("127.0.0.1", int(admin_port), timeout=60)
latencies, polls, polled = [], 0, 0.0
with open(os.path.join(directory, "changes")) as index:
    changes = [line.split() for line in index]
for k, (vip, address) in enumerate(changes):
    if ipvs.has_dest(vip, 80, address):
        sys.exit(f"change {k}: the kernel has {address} before the change")
    with open(os.path.join(directory, f"change-{k}.json"), "rb") as f:
        body = f.read()
    admin.request("POST", "/admin/apply", body)
    response = admin.getresponse()
    response.read()
    if response.status != 200:
        sys.exit(f"change {k}: the admin API answered {response.status}")
    start = time.monotonic()
    while not ipvs.has_dest(vip, 80, address):
        polls += 1
        if time.monotonic() - start > 60:
            sys.exit(f"change {k}: not in the kernel after 60 s")
        time.sleep(0.002)
    end = time.monotonic()
    polls += 1
    polled += end - start
    latencies.append((end - start) * 1000)
    # Each change on its own, not behind the previous one's sync; the pause varies so that the
    # changes do not fall into step with the agent's own polling of its source.
    time.sleep(pause.uniform(0.2, 0.5))

latencies.sort()
rank = lambda p: latencies[max(0, -(-len(latencies) * p // 100) - 1)]
print(f"{services} Services x {endpoints} endpoints ({virtual_servers} virtual servers):")
print(f"  {'objects applied to the test API server':<52} {apply_seconds:>8}s")
print(f"  {'agent start to its first sync (list, watch, write)':<52} {first_sync:>8}s")
print(f"  {len(latencies)} single-EndpointSlice changes, API accepted -> kernel has it:")
print(f"    p50 {rank(50):.1f} ms   p99 {rank(99):.1f} ms   max {latencies[-1]:.1f} ms"
      f"   (poll period {polled * 1000 / polls:.1f} ms)")
PY
}

main() {
  if [[ ${1:-} == --one ]]; then
    ip link set lo up
    run_one "$2"
    return
  fi
  if [[ ! -x $API_SERVER ]]; then
    echo "api-latency: skipped, no test API server at $API_SERVER (set KIPVS_API_SERVER)"
    return 0
  fi
  echo "== Kubernetes API to kernel: one EndpointSlice change at a time (agent min sync period 0s)"
  local size
  for size in ${KIPVS_API_SIZES:-1000 10000}; do
    unshare -n "$(realpath "$0")" --one "$size" || echo "api-latency: $size Services failed"
  done
}

main "$@"
