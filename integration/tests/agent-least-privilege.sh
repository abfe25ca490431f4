#!/usr/bin/env bash
# The agent needs root's uid for nothing and one capability, CAP_NET_ADMIN: run as nobody with
# only that (effective, permitted, bounding and ambient sets), it writes its sysctls, programs
# IPVS, binds its virtual IPs, sets the IPVS timeouts and serves /healthz and /metrics on ports
# above 1024. Without the capability, the first thing refused names what and why; a manifest
# nobody cannot read is refused by name.
source "$(dirname "$0")/pods.sh"

readonly NODE_IP=172.20.0.10 NOBODY=65534
readonly CAP_NET_ADMIN_MASK=0000000000001000
readonly SYSCTLS=(net.ipv4.ip_forward net.ipv4.vs.conntrack net.ipv4.vs.expire_nodest_conn
  net.ipv4.vs.expire_quiescent_template)

# as_nobody CAPS COMMAND...: COMMAND as uid and gid nobody, no groups, and only CAPS (setpriv's
# syntax: -all,+net_admin) in every set, with no way to gain more. It execs: call it in a
# subshell ($(...) or &), whose pid then is the agent's.
as_nobody() {
  local caps=$1
  shift
  local ambient=()
  [[ $caps == -all ]] || ambient=(--ambient-caps="$caps")
  exec setpriv --reuid="$NOBODY" --regid="$NOBODY" --clear-groups --no-new-privs \
    --inh-caps="$caps" "${ambient[@]}" --bounding-set="$caps" -- "$@"
}

sysctl_path() {
  echo "/proc/sys/${1//.//}"
}

# sysctls_set VALUE: every sysctl the agent manages, in this network namespace.
sysctls_set() {
  local key
  for key in "${SYSCTLS[@]}"; do echo "$1" >"$(sysctl_path "$key")"; done
}

once_as_nobody() {
  as_nobody "$1" "$KIPVS" run --once --source "file:$2" --hostname-override "$NODE_NAME" 2>&1
}

node_address_add "$NODE_IP"
manifest_write <<YAML
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.0.90
  ports: [{name: http, port: 80, targetPort: 8080, nodePort: 30090}]
$(slice_yaml web "http:8080" 10.244.1.2 10.244.1.3)
---
apiVersion: v1
kind: Service
metadata: {name: dns, namespace: default}
spec:
  clusterIP: 10.96.0.91
  ports: [{name: dns, port: 53, protocol: UDP}]
$(slice_yaml dns "dns:53:UDP" 10.244.1.4)
YAML
# The scratch directory is root's alone (mktemp): nobody needs to reach the manifest.
chmod 755 "$SCRATCH"
cp "$MANIFEST" "$SCRATCH/unreadable.yaml"
chmod 600 "$SCRATCH/unreadable.yaml"
chmod 644 "$MANIFEST"

# ---------------------------------------------------------------------------- without it
# Net sysctls are writable by their owner, root, and by whoever has CAP_NET_ADMIN over the
# namespace (the kernel's net_ctl_permissions): nobody without it is refused.
sysctls_set 0
out=$(once_as_nobody -all "$MANIFEST") && fail "kipvs ran without CAP_NET_ADMIN: $out"
assert_contains "$out" "write sysctl net\.ipv4\.ip_forward: Permission denied \(EACCES\)" \
  "without CAP_NET_ADMIN, with sysctls to write"
echo "without CAP_NET_ADMIN: $(tail -n 1 <<<"$out")"

# With the sysctls already right, the first sync is refused (creating kipvs0 over rtnetlink, or
# IPVS over generic netlink, which is GENL_ADMIN_PERM).
sysctls_set 1
out=$(once_as_nobody -all "$MANIFEST") && fail "kipvs ran without CAP_NET_ADMIN: $out"
assert_contains "$out" "Operation not permitted \(EPERM\)|CAP_NET_ADMIN is needed" \
  "without CAP_NET_ADMIN, sysctls already set"
echo "without CAP_NET_ADMIN, sysctls set: $(tail -n 1 <<<"$out")"
[[ -z $(ipvsadm -Sn) ]] || fail "a refused run left virtual servers: $(ipvsadm -Sn)"

out=$(once_as_nobody -all,+net_admin "$SCRATCH/unreadable.yaml") &&
  fail "kipvs read a file nobody cannot read: $out"
assert_contains "$out" "unreadable\.yaml.*(permission denied|not permitted|cannot be read)" \
  "a manifest nobody cannot read"
echo "an unreadable manifest: $(tail -n 1 <<<"$out")"

# ---------------------------------------------------------------------------- with it alone
sysctls_set 0
# The port flags name the defaults, both above 1024.
as_nobody -all,+net_admin "$KIPVS" run --source "file:$MANIFEST" --hostname-override "$NODE_NAME" \
  --healthz-bind-address 0.0.0.0:10256 --metrics-bind-address 127.0.0.1:10249 --ipvs-udp-timeout 123s \
  >>"$KIPVS_LOG" 2>&1 &
KIPVS_PID=$!

wait_rule "-a -t $NODE_IP:30090 -r 10.244.1.3:8080 -m -w 1"
wait_rule "-a -u 10.96.0.91:53 -r 10.244.1.4:53 -m -w 1"
status=$(grep -E '^(Uid|Gid|Groups|Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):' "/proc/$KIPVS_PID/status")
echo "  ${status//$'\n'/$'\n'  }"
assert_contains "$status" "^Uid:\s+$NOBODY\s+$NOBODY\s+$NOBODY\s+$NOBODY$" "the agent's uids"
assert_contains "$status" "^Gid:\s+$NOBODY\s+$NOBODY\s+$NOBODY\s+$NOBODY$" "the agent's gids"
for set in CapEff CapPrm CapBnd CapAmb; do
  assert_eq "$CAP_NET_ADMIN_MASK" "$(awk -v k="$set:" '$1 == k { print $2 }' <<<"$status")" "$set (CAP_NET_ADMIN alone)"
done

assert_eq "10.96.0.90/32 10.96.0.91/32" \
  "$(ip -o -4 addr show dev kipvs0 | awk '{ print $4 }' | sort | paste -sd' ')" "virtual IPs bound to kipvs0"
for key in "${SYSCTLS[@]}"; do assert_eq 1 "$(<"$(sysctl_path "$key")")" "$key written by the agent"; done
assert_contains "$(ipvsadm -L --timeout)" "Timeout \(tcp tcpfin udp\): [0-9]+ [0-9]+ 123$" "IPVS UDP timeout"

healthz_ok() {
  [[ $(curl -sS -o /dev/null -w '%{http_code}' http://127.0.0.1:10256/healthz 2>&1) == 200 ]]
}
wait_for 20 "200 from /healthz" healthz_ok
assert_contains "$(curl -fsS http://127.0.0.1:10249/metrics)" "^kubeproxy_sync_proxy_rules_" "/metrics"

# Nothing was refused: only this kernel's missing nf_tables and nfnetlink were reported.
denied=$(grep -Ei "EPERM|EACCES|not permitted|permission denied" "$KIPVS_LOG" || true)
[[ -z $denied ]] || fail "the agent was refused something with CAP_NET_ADMIN: $denied"

agent_stop
grep -q "stopping; kernel state left in place" "$KIPVS_LOG" || fail "the agent did not stop cleanly on SIGTERM"
echo "soak: least privilege: uid $NOBODY, CapEff $CAP_NET_ADMIN_MASK:" \
  "sysctls written, IPVS synced, virtual IPs bound, /healthz 200"
