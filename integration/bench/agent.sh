#!/usr/bin/env bash
# Guest side: the agent on 10,000 Services x 10 endpoints (a tenth also NodePort), next to
# ipvsadm -R of the same virtual and real servers. Each measured run gets a fresh namespace.
set -euo pipefail
KIPVS=${KIPVS:?path of the kipvs binary}
SERVICES=${KIPVS_BENCH_SERVICES:-10000}
SYNCBENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/syncbench.py
scratch=$(mktemp -d /run/agent-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$scratch"' EXIT
NODE_IP=192.168.77.10

# Services and EndpointSlices as kubectl would print them; NodePorts 30000 + i for every tenth.
generate_manifest() {
  python3 - "$SERVICES" "$1" <<'PY'
import sys
n, extra = int(sys.argv[1]), sys.argv[2]
out = []
for s in range(n):
    vip = f"10.{96 + s // 62500}.{s // 250 % 250}.{s % 250 + 1}"
    node_port = s % 10 == 0
    out.append(f"""---
apiVersion: v1
kind: Service
metadata: {{name: svc-{s}, namespace: bench}}
spec:
  type: {"NodePort" if node_port else "ClusterIP"}
  clusterIP: {vip}
  ports:
  - {{port: 80, targetPort: 8080, protocol: TCP{f", nodePort: {30000 + s // 10}" if node_port else ""}}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: svc-{s}-abc
  namespace: bench
  labels: {{kubernetes.io/service-name: svc-{s}}}
addressType: IPv4
ports: [{{port: 8080, protocol: TCP}}]
endpoints:
""")
    count = 11 if (extra == "extra" and s == 0) else 10
    for r in range(count):
        out.append(f"- {{addresses: [10.{200 + r // 250}.{r % 250}.{s % 250 + 1}], conditions: {{ready: true}}}}\n")
print("".join(out), end="")
PY
}

# The same virtual and real servers in ipvsadm -R syntax.
generate_rules() {
  awk -v n="$SERVICES" -v node="$NODE_IP" 'BEGIN {
    for (s = 0; s < n; s++) {
      vip = sprintf("10.%d.%d.%d", 96 + int(s / 62500), int(s / 250) % 250, s % 250 + 1)
      svc[0] = vip ":80"; k = 1
      if (s % 10 == 0) { svc[1] = node ":" (30000 + int(s / 10)); k = 2 }
      for (j = 0; j < k; j++) {
        printf "-A -t %s -s rr\n", svc[j]
        for (r = 0; r < 10; r++) printf "-a -t %s -r 10.%d.%d.%d:8080 -m -w 1\n", svc[j], 200 + int(r / 250), r % 250, s % 250 + 1
      }
    }
  }'
}

now() { date +%s.%N; }
seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
node_setup='ip link set lo up; ip link add eth0 type dummy; ip addr add '"$NODE_IP"'/24 dev eth0; ip link set eth0 up'

generate_manifest base > "$scratch/services.yaml"
generate_manifest extra > "$scratch/services-extra.yaml"
generate_rules > "$scratch/rules"
ops=$(wc -l < "$scratch/rules")
echo "input: $SERVICES Services, $(grep -c '^-A' "$scratch/rules") virtual servers, $ops ipvsadm operations"

# ipvsadm -R of the equivalent rules.
unshare -n bash -c "$node_setup"'; t0=$(date +%s.%N); ipvsadm -R < "$1"; t1=$(date +%s.%N); echo "$t0 $t1" > "$2"' _ "$scratch/rules" "$scratch/ipvsadm.t"
read -r a0 a1 < "$scratch/ipvsadm.t"

# The agent: first sync from empty, a resync with nothing changed, one endpoint change.
unshare -n bash -c "$node_setup"'
  set -euo pipefail
  K=$1; dir=$2; syncbench=$3; cfg="--source file:$dir/services.yaml --hostname-override bench-node"
  t0=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$dir/first.rss" $K run --once $cfg 2> "$dir/first.log"
  t1=$(date +%s.%N)
  ipvsadm -Sn > "$dir/after-first"
  t2=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$dir/resync.rss" $K run --once $cfg 2> "$dir/resync.log"
  t3=$(date +%s.%N)
  ipvsadm -Sn > "$dir/after-resync"
  # The agent proper: wait for its first sync, then change one endpoint and time it to the kernel.
  $K run $cfg --ipvs-min-sync-period 0s --ipvs-sync-period 1h --log-level debug 2> "$dir/run.log" &
  for _ in $(seq 1200); do grep -q "synced, nothing changed" "$dir/run.log" && break; sleep 0.1; done
  # Renamed into place, timed to the kernel holding the new real server (looked at over netlink).
  cp "$dir/services-extra.yaml" "$dir/services.yaml.new"
  change=$(python3 "$syncbench" rename-wait "$dir/services.yaml.new" "$dir/services.yaml" 10.96.0.1 80 10.200.10.1)
  kill %1
  echo "$t0 $t1 $t2 $t3 $change" > "$dir/agent.t"
' _ "$KIPVS" "$scratch" "$SYNCBENCH"
read -r k0 k1 k2 k3 change < "$scratch/agent.t"

# The resync must have been a no-op: same table, and no change logged.
cmp -s "$scratch/after-first" "$scratch/after-resync" || { echo "resync changed the kernel table"; exit 1; }
writes=$(grep -c "msg=synced\|synced " "$scratch/resync.log" || true)

printf '%-44s %10s\n' "ipvsadm -R of the equivalent rules" "$(seconds "$a0" "$a1")s"
printf '%-44s %10s  (peak RSS %s MiB)\n' "kipvs first sync from an empty kernel" "$(seconds "$k0" "$k1")s" "$(( $(cat "$scratch/first.rss") / 1024 ))"
printf '%-44s %10s  (peak RSS %s MiB, change lines logged: %s)\n' "kipvs resync, nothing changed" "$(seconds "$k2" "$k3")s" "$(( $(cat "$scratch/resync.rss") / 1024 ))" "$writes"
printf '%-44s %10s\n' "one endpoint added: file rename to kernel" "${change}s"
printf '%-44s %10s\n' "ratio ipvsadm -R / kipvs first sync" "$(awk -v a="$(seconds "$a0" "$a1")" -v b="$(seconds "$k0" "$k1")" 'BEGIN { printf "%.1fx", a / b }')"

if [[ -n ${KIPVS_FIGURES:-} ]]; then
  { echo "file.services $SERVICES"; echo "file.bytes $(stat -c %s "$scratch/services.yaml")"; echo "file.change_s $change"; } >> "$KIPVS_FIGURES"
fi
