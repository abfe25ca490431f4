#!/usr/bin/env bash
# Guest side: the agent on a manifest directory, 10,000 Services x 10 endpoints in 100 files of
# 100 Services and their EndpointSlices, in a fresh network namespace. KIPVS_DIR_CHANGES (20)
# times, one file gets a new version with one more endpoint, written under a dot name (which the
# directory's reader skips) and renamed into place; each is timed from the rename to the kernel
# listing the new real server, looked at over generic netlink every ~0.2 ms (syncbench.py
# manifest-dir). Prints figures and records them for the summary table; asserts nothing.
set -euo pipefail
KIPVS=${KIPVS:?path of the kipvs binary}
export KIPVS
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
services=${KIPVS_DIR_SERVICES:-10000} files=${KIPVS_DIR_FILES:-100}
echo "== Manifest directory to kernel: one endpoint change, the file renamed into place"
unshare -n sh -c 'ip link set lo up && exec python3 "$0" manifest-dir "$1" "$2"' "$here/syncbench.py" "$services" "$files" ||
  echo "manifest-dir: failed"
