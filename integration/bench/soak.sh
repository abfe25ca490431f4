#!/usr/bin/env bash
# Guest side: the tamper and crash soaks (tests/agent-tamper-soak.sh, tests/agent-crash-soak.sh) at
# full size, each in a fresh network namespace; they print their figures as "soak:" lines. A soak
# that fails prints its log, and the benchmarks go on. KIPVS_SOAK_ROUNDS and KIPVS_SOAK_KILLS
# change the sizes (uml.sh passes the guest only KIPVS* variables).
set -euo pipefail
export KIPVS=${KIPVS:?path of the kipvs binary}
export SOAK_ROUNDS=${KIPVS_SOAK_ROUNDS:-100} SOAK_KILLS=${KIPVS_SOAK_KILLS:-50}
tests=$(cd "$(dirname "${BASH_SOURCE[0]}")/../tests" && pwd)
log=$(mktemp /run/soak.XXXXXX)
trap 'rm -f "$log"' EXIT

for name in agent-tamper-soak agent-crash-soak; do
  case $name in
    agent-tamper-soak) echo "== the agent repairing outside damage: $SOAK_ROUNDS rounds ($name)" ;;
    agent-crash-soak) echo "== the agent SIGKILLed while its input changes: $SOAK_KILLS kills ($name)" ;;
  esac
  start=$SECONDS rc=0
  # A new network namespace starts with lo down, and IPVS refuses real servers until it is up.
  # shellcheck disable=SC2016 # expanded by the inner shell
  unshare -n bash -c 'ip link set lo up && exec bash "$0"' "$tests/$name.sh" >"$log" 2>&1 || rc=$?
  grep '^soak:' "$log" || true
  if ((rc == 0)); then
    echo "$name: passed in $((SECONDS - start)) s"
  else
    echo "$name: FAILED (exit $rc) after $((SECONDS - start)) s; its log:"
    sed 's/^/    /' "$log"
  fi
done
