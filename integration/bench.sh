#!/usr/bin/env bash
# Guest side of `make bench`: every benchmark prints its figures; none asserts on time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
export KIPVS=${KIPVS:?path of a release kipvs binary}
echo "== kipvs restore/save against ipvsadm -R/-Sn (TCP services x 10 masquerading real servers)"
bench/restore-save.sh
for extra in bench/agent.sh bench/api-latency.sh bench/soak.sh; do
  [[ -x $extra ]] && { echo; "$extra"; }
done
exit 0
