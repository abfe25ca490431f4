# shellcheck shell=bash
# The test loop both guests' runners share (kernel-tests.sh in UML, packet-tests.sh in qemu):
# one line per test, its log only when it fails, each in a fresh network namespace.
# The caller sets TEST_TIMEOUT, LOGS and SELECTED; PASSED and FAILED count.
PASSED=0
FAILED=0

# run_test NAME COMMAND...: a new network namespace starts with lo down, and IPVS refuses real
# servers until it is up.
run_test() {
  local name=$1
  shift
  selected "$name" || return 0
  local log=$LOGS/$name.log start=$SECONDS rc=0
  timeout -k 10 "$TEST_TIMEOUT" unshare -n bash -c 'ip link set lo up && exec "$@"' netns "$@" \
    >"$log" 2>&1 </dev/null || rc=$?
  if ((rc == 0)); then
    PASSED=$((PASSED + 1))
    echo "PASS $name ($((SECONDS - start))s)"
  else
    FAILED=$((FAILED + 1))
    echo "FAIL $name ($((SECONDS - start))s, exit $rc)"
    sed 's/^/    /' "$log"
  fi
}

# selected NAME: whether NAME was asked for (everything is, when nothing was named).
selected() {
  ((${#SELECTED[@]} == 0)) && return 0
  local s
  for s in "${SELECTED[@]}"; do [[ $s == "$1" ]] && return 0; done
  return 1
}
