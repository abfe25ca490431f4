#!/usr/bin/env bash
# Guest side: the summary table of the agent's sync figures the benchmarks recorded in
# KIPVS_FIGURES (one "KEY VALUE" line each), next to the figures of the full-sync agent before
# them and the aims. A figure that was not taken shows as —.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
echo "== The agent's sync: previous (full sync each time), now, aim"
exec python3 "$here/syncbench.py" table "${1:-${KIPVS_FIGURES:?file of recorded figures}}"
