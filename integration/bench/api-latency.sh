#!/usr/bin/env bash
# Guest side: the agent on the Kubernetes API source, for 10,000 and 50,000 Services (each with an
# EndpointSlice of 3 endpoints), each size in a fresh network namespace with its own test API
# server (kube-api-test-server). Per size (syncbench.py api):
# - agent start to its first sync from an empty kernel, with the time the agent's log shows for
#   its lists and for the sync itself, and the time the test server alone takes to answer the
#   same list pages (its history compacted first, as a real server's is);
# - KIPVS_API_CHANGES (100) EndpointSlices given a fourth endpoint one at a time, each timed from
#   the admin API call returning (the server has the new version and has queued its watch event)
#   to the kernel listing the new real server, looked at over generic netlink with a 0.2 ms pause
#   between looks (the measured period is printed);
# - at KIPVS_CHURN_SERVICES (10,000) only: 10 changes a second for KIPVS_CHURN_SECONDS (600), and
#   the agent's CPU time (utime+stime) over them;
# - the agent's peak RSS (VmHWM);
# - a new agent with --ipvs-sync-period 10s on the full table: its periodic resyncs with nothing
#   changed (from its debug log), next to `ipvsadm -Sn` of the same table.
# Prints figures, the measured poll period among them, and records them for the summary table;
# asserts nothing.
#
#   api-latency.sh                  every size (KIPVS_API_SIZES="10000 50000" by default)
#   api-latency.sh --one SERVICES   one size, in the current namespace (run under unshare -n)
set -euo pipefail

KIPVS=${KIPVS:?path of the kipvs binary}
export KIPVS_API_SERVER=${KIPVS_API_SERVER:-$(dirname "$KIPVS")/kube-api-test-server}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [[ ${1:-} == --one ]]; then
  ip link set lo up
  exec python3 "$here/syncbench.py" api "$2"
fi
if [[ ! -x $KIPVS_API_SERVER ]]; then
  echo "api-latency: skipped, no test API server at $KIPVS_API_SERVER (set KIPVS_API_SERVER)"
  exit 0
fi
echo "== Kubernetes API to kernel: first sync, one EndpointSlice change at a time (agent min sync period 0s), churn, resync"
for size in ${KIPVS_API_SIZES:-10000 50000}; do
  unshare -n "$here/api-latency.sh" --one "$size" || echo "api-latency: $size Services failed"
done
