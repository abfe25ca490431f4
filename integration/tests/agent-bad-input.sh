#!/usr/bin/env bash
# A file that fails validation changes nothing: the kernel keeps the last good state through
# later syncs (even where the bad file also holds valid changes), and the log names the file,
# the object and the problem; so does a hostile file (alias bomb, huge, deep, binary, empty).
# A good file afterwards is applied again.
source "$(dirname "$0")/pods.sh"

# cluster_yaml WEB_PORT API_ENDPOINT...: two Services; what varies is web's port and the
# endpoints of api. No pods are needed: IPVS accepts real servers it cannot reach.
cluster_yaml() {
  local port=$1
  shift
  cat <<YAML
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.96.0.50
  ports: [{port: $port, targetPort: 8080}]
$(slice_yaml web ":8080" 10.244.1.2 10.244.2.2)
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: default}
spec:
  clusterIP: 10.96.0.51
  ports: [{port: 443, targetPort: 8443}]
$(slice_yaml api ":8443" "$@")
YAML
}

# snapshot: what the kernel holds that kipvs manages.
snapshot() {
  rules
  ip -o -4 addr show dev kipvs0 | awk '{ print $4 }' | sort
}

# expect_rejected WHAT PATTERN...: the next rejection is logged with every PATTERN, and a full
# resync after it leaves the kernel as it was.
expect_rejected() {
  local what=$1 line pattern
  shift
  wait_for 15 "log of the rejected $what" log_count_at_least 'source rejected' $((++REJECTIONS))
  line=$(log_records | grep 'source rejected' | tail -n 1)
  echo "$what: $line"
  for pattern in "$MANIFEST" "$@"; do
    grep -qF -- "$pattern" <<<"$line" || fail "$what: the log line does not say '$pattern': $line"
  done
  wait_syncs 2
  snapshot >"$SCRATCH/after"
  assert_same_file "$SCRATCH/before" "$SCRATCH/after" "kernel state after the rejected $what"
  agent_alive || fail "kipvs exited on the rejected $what"
}

REJECTIONS=0
cluster_yaml 80 10.244.3.2 10.244.4.2 | manifest_write
agent_start --log-level debug --ipvs-sync-period 1s
wait_rule "-a -t 10.96.0.51:443 -r 10.244.4.2:8443 -m -w 1"
wait_rule "-a -t 10.96.0.50:80 -r 10.244.2.2:8080 -m -w 1"
snapshot >"$SCRATCH/before"

cluster_yaml 70000 10.244.3.2 | manifest_write
expect_rejected "port 70000" "Service default/web" "70000"

cluster_yaml 80 10.244.3.2 10.244.4.300 | manifest_write
expect_rejected "invalid address" "EndpointSlice default/api-x1" "10.244.4.300"

printf 'apiVersion: v1\nkind: Service\nmetadata: {name: web\n' | manifest_write
expect_rejected "unparsable YAML" "YAML"

# Hostile files: each refused in one line naming the file, the kernel left as it was, the agent
# alive and syncing (the parse runs beside the sync loop, within fixed bounds).
python3 - >"$SCRATCH/laughs.yaml" <<'PY'
print("apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:")
print('  l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]')
for level in range(1, 9):
    print(f"  l{level}: &l{level} [" + ",".join([f"*l{level - 1}"] * 9) + "]")
print("  ports: *l8")
PY
manifest_write <"$SCRATCH/laughs.yaml"
expect_rejected "alias bomb" "more than 16 YAML aliases"

printf 'apiVersion: v1\nkind: Service\nmetadata: {name: %s}\nspec: {clusterIP: 10.96.0.52}\n' \
  "$(head -c 10000 /dev/zero | tr '\0' a)" | manifest_write
expect_rejected "10,000-character name" "metadata.name" "is longer than 63 characters"

{ printf 'apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: '; head -c 10000 /dev/zero | tr '\0' '['; echo; } |
  manifest_write
expect_rejected "10,000-deep nesting" "Maximum nesting level"

{ printf '{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "'; head -c 70000000 /dev/zero | tr '\0' x
  printf '"}}'; } | manifest_write
expect_rejected "70 MB one-line JSON" "manifests over 64 MiB are refused"

printf 'apiVersion: v1\n\xff\xfe\x00\x01garbage\n' | manifest_write
expect_rejected "binary garbage" "is not UTF-8 text"

: | manifest_write
expect_rejected "empty file" "has no objects"

# Every refusal above is one line of modest length, whatever the input held.
longest=$(log_records | grep 'source rejected' | awk '{ if (length($0) > n) n = length($0) } END { print n + 0 }')
((longest < 1500)) || fail "a refusal logged in $longest characters"

cluster_yaml 80 10.244.3.2 | manifest_write
wait_no_text "-r 10.244.4.2:8443 "
has_rule "-a -t 10.96.0.51:443 -r 10.244.3.2:8443 -m -w 1" || fail "good file after bad ones not applied"
