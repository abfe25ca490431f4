#!/usr/bin/env bash
# kube-proxy's configuration file (--config): its IPVS timeouts, scheduler and node port
# addresses reach the kernel, flags given on the command line win over it, `primary` means the
# default route's interface, and a bad field stops the agent before it changes anything.
source "$(dirname "$0")/pods.sh"

readonly CONFIG=$SCRATCH/kube-proxy.yaml NODE_IP=172.20.0.10 NODE_PORT=30080

# The kernel's timeouts: "TCP TCPFIN UDP" seconds, as `ipvsadm -L --timeout` prints them.
timeouts() {
  ipvsadm -L --timeout | sed -n 's/^Timeout (tcp tcpfin udp): //p'
}

config_yaml() {
  cat <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: ipvs
hostnameOverride: $NODE_NAME
ipvs:
  scheduler: lc
  syncPeriod: 30s
  minSyncPeriod: 0s
  tcpTimeout: 50s
  tcpFinTimeout: 30s
  udpTimeout: 1m0s
nodePortAddresses: [primary]
conntrack:
  maxPerCore: 32768
YAML
}

cluster_yaml() {
  cat <<YAML
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.0.60
  ports: [{port: 80, targetPort: 8080, nodePort: $NODE_PORT}]
$(slice_yaml web ":8080" 10.244.1.2)
YAML
}

# run_until_synced FLAG...: the agent on the config and the cluster, until web is in the kernel.
run_until_synced() {
  : >"$KIPVS_LOG"
  "$KIPVS" run --config "$CONFIG" --source "file:$MANIFEST" "$@" >>"$KIPVS_LOG" 2>&1 &
  KIPVS_PID=$!
  wait_rule "-a -t 10.96.0.60:80 -r 10.244.1.2:8080 -m -w 1"
}

# The node: its own address on node0 holds the default route; a second interface has another
# address, which `primary` must leave out.
node_address_add "$NODE_IP"
ip route add default dev node0
ip link add other0 type dummy
ip addr add 192.168.77.1/24 dev other0
ip link set other0 up
config_yaml >"$CONFIG"
cluster_yaml | manifest_write

before=$(timeouts)
echo "kernel timeouts before: $before"

# The file alone.
run_until_synced
assert_eq "50 30 60" "$(timeouts)" "timeouts from the file"
has_rule "-A -t 10.96.0.60:80 -s lc" || fail "scheduler lc from the file not used: $(rules)"
has_rule "-A -t $NODE_IP:$NODE_PORT -s lc" || fail "no NodePort on the primary address $NODE_IP: $(rules)"
if grep -q -- "192.168.77.1:$NODE_PORT" <<<"$(rules)"; then fail "NodePort on a non-primary address: $(rules)"; fi
assert_contains "$(log_records)" "conntrack\.maxPerCore.*configuration file field ignored" "the ignored conntrack field"
agent_stop
echo "file: timeouts $(timeouts), scheduler lc, NodePort on $NODE_IP only"

# Flags win over the file; the file's other values stay. The kernel's defaults first, so that
# what the first run set cannot pass for what this one sets.
ipvsadm -C
ipvsadm --set 900 120 300
run_until_synced --ipvs-tcp-timeout 100s --ipvs-scheduler sh --nodeport-addresses 192.168.77.0/24
assert_eq "100 30 60" "$(timeouts)" "--ipvs-tcp-timeout over the file's tcpTimeout"
has_rule "-A -t 10.96.0.60:80 -s sh" || fail "--ipvs-scheduler sh did not win over the file: $(rules)"
has_rule "-A -t 192.168.77.1:$NODE_PORT -s sh" || fail "--nodeport-addresses did not win over the file: $(rules)"
agent_stop
echo "flags: timeouts $(timeouts), scheduler sh, NodePort on 192.168.77.1"

# A bad field: a clear error, no change to the kernel.
ipvsadm -C
ipvsadm --set 900 120 300
snapshot=$(timeouts)
sed -i 's/syncPeriod: 30s/syncPeriod: 3x/' "$CONFIG"
rc=0
out=$("$KIPVS" run --config "$CONFIG" --source "file:$MANIFEST" 2>&1) || rc=$?
((rc != 0)) || fail "kipvs run accepted ipvs.syncPeriod: 3x"
assert_contains "$out" '--config: ipvs\.syncPeriod: "3x" is not a duration' "the error names the field"
assert_eq "$snapshot" "$(timeouts)" "timeouts after a refused configuration"
[[ -z $(rules) ]] || fail "kipvs changed the table with a bad configuration: $(rules)"
echo "bad file: exit $rc, $(head -n 1 <<<"$out")"
