#!/usr/bin/env bash
# Runs inside the qemu guest (see qemu.sh): the Swift suites that need nf_tables for IP
# (NFTablesKernelTests, ConntrackKernelTests), built on the host, then every
# integration/packet/*.sh test. Each runs in a fresh network namespace, which plays node A of
# the two-node topology in packet/topology.sh.
#
#   packet-tests.sh [NAME...]    NAME: swift-PacketKernelTests or a script name without .sh;
#                                default all
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
# shellcheck source=guest-runner.sh
source "$REPO/integration/guest-runner.sh"
export KIPVS=${KIPVS:-$REPO/.build/debug/kipvs}
export PEER=${PEER:-$REPO/.build/peer}
readonly TEST_TIMEOUT=${KIPVS_TEST_TIMEOUT:-300}
readonly SWIFT_SUITES='NFTablesKernelTests|ConntrackKernelTests'
readonly SWIFT_NAME=swift-PacketKernelTests
LOGS=
SWIFT_OUT=
SWIFT_PID=
SELECTED=()

# The bundle exits 0 when the filter matches nothing, so also demand that some test ran.
swift_tests() {
  local rc=0
  # The test bundle itself, not `swift test`: loading the package graph in the guest costs minutes.
  local bundle="$REPO/.build/debug/kipvsPackageTests.xctest"
  [[ -x $bundle ]] || { echo "no test bundle at $bundle: run make build first"; return 1; }
  SWIFT_OUT=$(mktemp)
  # The per-test timeout ends this script with a TERM: say which tests never finished.
  trap 'kill "$SWIFT_PID" 2>/dev/null; swift_summary; swift_unfinished; exit 124' TERM
  "$bundle" --testing-library swift-testing --filter "$SWIFT_SUITES" >"$SWIFT_OUT" 2>&1 &
  SWIFT_PID=$!
  wait "$SWIFT_PID" || rc=$?
  swift_summary
  ((rc == 0)) || return "$rc"
  grep -Eq 'Test run with [1-9][0-9]* tests?|Executed [1-9][0-9]* tests?' "$SWIFT_OUT" ||
    { echo "no $SWIFT_SUITES test ran: is the test target built (make build)?"; return 1; }
}

# Keep failures and summaries readable: drop the per-test start and pass lines.
swift_summary() {
  grep -Ev "^[[:space:]]*(◇ Test .* started\.|✔ Test .* passed after .*)$|^Test Case '.*' (started|passed)" "$SWIFT_OUT" || true
}

swift_unfinished() {
  awk '/^◇ Test [^ ]+ started\./ && $3 != "run" { running[$3] = 1 }
       /^(✔|✘) Test [^ ]+ / { delete running[$3] }
       END { for (t in running) print "still running at the timeout: " t }' "$SWIFT_OUT"
}

run_swift_tests() {
  selected "$SWIFT_NAME" || return 0
  if ! grep -rqE "(struct|class|enum|extension) ($SWIFT_SUITES)\b" "$REPO/Tests"; then
    echo "SKIP $SWIFT_NAME (no $SWIFT_SUITES suite in Tests/ yet)"
    return
  fi
  run_test "$SWIFT_NAME" "$REPO/integration/packet-tests.sh" --swift
}

run_shell_tests() {
  local test name
  for test in "$REPO"/integration/packet/*.sh; do
    name=$(basename "$test" .sh)
    [[ $name == topology ]] && continue
    run_test "$name" bash "$test"
  done
}

main() {
  if [[ ${1:-} == --swift ]]; then
    trap 'rm -f "$SWIFT_OUT"' EXIT
    swift_tests
    return
  fi
  [[ -e /proc/net/ip_vs ]] || { echo "no IPVS in this kernel: run me through integration/qemu.sh"; exit 1; }
  [[ -x $KIPVS ]] || echo "warning: $KIPVS is missing; the kipvs tests will fail"
  [[ -x $PEER ]] || echo "warning: $PEER is missing (make build compiles it); the packet tests will fail"
  SELECTED=("$@")
  local name
  for name in "$@"; do
    [[ $name == "$SWIFT_NAME" || ($name != topology && -f $REPO/integration/packet/$name.sh) ]] ||
      { echo "no such test: $name"; exit 2; }
  done
  cd "$REPO"
  LOGS=$(mktemp -d)
  trap 'rm -rf "$LOGS"' EXIT
  run_swift_tests
  run_shell_tests
  echo "$PASSED passed, $FAILED failed"
  ((FAILED == 0))
}

main "$@"
