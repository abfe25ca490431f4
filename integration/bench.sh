#!/usr/bin/env bash
# Guest side of `make bench`: every benchmark prints its figures; none asserts on time. The agent's
# sync figures are also recorded, and summed up in one table at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
export KIPVS=${KIPVS:?path of a release kipvs binary}
KIPVS_FIGURES=$(mktemp "${KIPVS_SCRATCH:-/tmp}/figures.XXXXXX")
export KIPVS_FIGURES
echo "== kipvs restore/save against ipvsadm -R/-Sn (TCP services x 10 masquerading real servers)"
bench/restore-save.sh
for extra in bench/agent.sh bench/api-latency.sh bench/manifest-dir.sh bench/soak.sh; do
  [[ -x $extra ]] && { echo; "$extra" || echo "$extra failed (exit $?)"; }
done
echo
bench/sync-figures.sh "$KIPVS_FIGURES"
rm -f "$KIPVS_FIGURES"
exit 0
