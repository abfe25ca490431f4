#!/usr/bin/env bash
# Runs inside the guest (see uml.sh): the Swift KernelTests suite built on the host, then every
# integration/tests/*.sh script. Each runs in a fresh network namespace, so each starts from an
# empty IPVS table and none can disturb another.
#
#   kernel-tests.sh [NAME...]    NAME: swift-KernelTests or a script name without .sh; default all
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
# shellcheck source=guest-runner.sh
source "$REPO/integration/guest-runner.sh"
export KIPVS=${KIPVS:-$REPO/.build/debug/kipvs}
readonly TEST_TIMEOUT=${KIPVS_TEST_TIMEOUT:-300}
LOGS=
SELECTED=()

# swift test exits 0 when the filter matches nothing, so also demand that some test ran.
swift_kernel_tests() {
  local out rc=0
  # The test bundle itself, not `swift test`: loading the package graph in the guest costs minutes.
  local bundle="$REPO/.build/debug/kipvsPackageTests.xctest"
  [[ -x $bundle ]] || { echo "no test bundle at $bundle: run make build first"; return 1; }
  out=$("$bundle" --testing-library swift-testing --filter KernelTests 2>&1) || rc=$?
  # Keep failures and summaries readable: drop the per-test start and pass lines.
  grep -Ev "^[[:space:]]*(◇|✔) Test [^ ]+ (started|passed)|^Test Case '.*' (started|passed)" <<<"$out" || true
  ((rc == 0)) || return "$rc"
  grep -Eq 'Test run with [1-9][0-9]* tests?|Executed [1-9][0-9]* tests?' <<<"$out" ||
    { echo "no KernelTests ran: is the test target built (make build)?"; return 1; }
}

run_swift_tests() {
  selected swift-KernelTests || return 0
  if ! grep -q '"KernelTests"' "$REPO/Package.swift"; then
    echo "SKIP swift-KernelTests (Package.swift has no KernelTests target)"
    return
  fi
  run_test swift-KernelTests "$REPO/integration/kernel-tests.sh" --swift
}

run_shell_tests() {
  local test name
  for test in "$REPO"/integration/tests/*.sh; do
    name=$(basename "$test" .sh)
    [[ $name == lib ]] && continue
    run_test "$name" bash "$test"
  done
}

main() {
  if [[ ${1:-} == --swift ]]; then swift_kernel_tests; return; fi
  [[ -e /proc/net/ip_vs ]] || { echo "no IPVS in this kernel: run me through integration/uml.sh"; exit 1; }
  [[ -x $KIPVS ]] || echo "warning: $KIPVS is missing; the kipvs tests will fail"
  SELECTED=("$@")
  local name
  for name in "$@"; do
    [[ $name == swift-KernelTests || -f $REPO/integration/tests/$name.sh ]] ||
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
