#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer and AddressSanitizer (into .build-fuzz, apart from the
# normal build) and runs each for FUZZ_SECONDS from its seed corpus in Fuzz/corpus/<target>.
# Prints each target's executions and findings; exits 1 if any target found something.
#
#   Fuzz/run.sh [TARGET...]     TARGET: netlink-replies ipvsadm-rules manifests api-responses
#
# New inputs go to .build-fuzz/runs/<target>/corpus, findings (crash-*, timeout-*, oom-*, leak-*)
# next to it; replay one with `.build-fuzz/release/<target> FILE`.
set -euo pipefail

FUZZ=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$FUZZ")
readonly FUZZ REPO
readonly SWIFT=${SWIFT:-swift}
readonly FUZZ_SECONDS=${FUZZ_SECONDS:-60}
readonly SCRATCH=$REPO/.build-fuzz
ALL=(netlink-replies ipvsadm-rules manifests api-responses)
TARGETS=("${@:-${ALL[@]}}")

# Every module instrumented (Swift and C alike), so coverage guides the search through all of them.
BUILD=(-c release --package-path "$FUZZ" --scratch-path "$SCRATCH"
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -enable-testing -Xcc -fsanitize=fuzzer-no-link,address)
"$SWIFT" build "${BUILD[@]}" 2>&1 | grep -v "Cannot export local symbol" || true
BIN=$("$SWIFT" build "${BUILD[@]}" --show-bin-path)

stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -1; }

FOUND=0
for target in "${TARGETS[@]}"; do
  [[ -x $BIN/$target ]] || { echo "$target: no such target (${ALL[*]})" >&2; exit 2; }
  run=$SCRATCH/runs/$target
  rm -rf "$run"
  mkdir -p "$run/corpus"
  # The first directory takes what the run adds; the committed seeds are only read.
  rc=0
  # Swift's own crash reporter would run inside the dying process and trip AddressSanitizer itself.
  SWIFT_BACKTRACE=enable=no LSAN_OPTIONS=suppressions=$FUZZ/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS} "$BIN/$target" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$run/" "$run/corpus" "$FUZZ/corpus/$target" >"$run/log" 2>&1 || rc=$?
  runs=$(stat number_of_executed_units "$run/log")
  rate=$(stat average_exec_per_sec "$run/log")
  findings=("$run"/crash-* "$run"/timeout-* "$run"/oom-* "$run"/leak-*)
  found=0
  for f in "${findings[@]}"; do [[ -e $f ]] && found=$((found + 1)); done
  echo "$target: ${runs:-?} executions, ${rate:-?}/s, $found findings (corpus $(ls "$run/corpus" | wc -l) new inputs)"
  if ((found > 0 || rc != 0)); then
    FOUND=1
    for f in "${findings[@]}"; do [[ -e $f ]] && echo "  $f"; done
    grep -m1 -E "ERROR: |Fatal error|fatal error|SUMMARY|deadly signal" "$run/log" | sed 's/^/  /' || true
    echo "  log: $run/log"
  fi
done
exit "$FOUND"
