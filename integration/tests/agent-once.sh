#!/usr/bin/env bash
# `kipvs run --once` exits 0 when it synced, and non-zero without touching the kernel when
# the source is bad or missing.
source "$(dirname "$0")/pods.sh"

# web_yaml PORT
web_yaml() {
  cat <<YAML
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.96.0.80
  ports: [{port: $1, targetPort: 8080}]
$(slice_yaml web ":8080" 10.244.1.2)
YAML
}

# once SOURCE: prints the exit status of `kipvs run --once`, its output in the log.
once() {
  local rc=0
  "$KIPVS" run --once --source "$1" --hostname-override "$NODE_NAME" >"$SCRATCH/once.log" 2>&1 || rc=$?
  cat "$SCRATCH/once.log" >>"$KIPVS_LOG"
  echo "$rc"
}

web_yaml 80 | manifest_write
assert_eq 0 "$(once "file:$MANIFEST")" "exit status on a good source"
grep -qxF -- "-a -t 10.96.0.80:80 -r 10.244.1.2:8080 -m -w 1" <<<"$(ipvsadm -Sn)" || fail "good source not applied"
rules >"$SCRATCH/before"

web_yaml 70000 | manifest_write
rc=$(once "file:$MANIFEST")
((rc != 0)) || fail "exit status 0 on a source with port 70000"
grep -qF "Service default/web" "$SCRATCH/once.log" || fail "the log does not name the bad object: $(cat "$SCRATCH/once.log")"

rc=$(once "file:$SCRATCH/missing.yaml")
((rc != 0)) || fail "exit status 0 on a missing source"
rc=$(once "nowhere")
((rc != 0)) || fail "exit status 0 on a source that is not file:PATH"

rules >"$SCRATCH/after"
assert_same_file "$SCRATCH/before" "$SCRATCH/after" "kernel state after failed runs"
