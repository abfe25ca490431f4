#!/usr/bin/env bash
# 10,000 services x 10 real servers in one restore: nothing lost, nothing altered.
source "$(dirname "$0")/lib.sh"

readonly SERVICES=${KIPVS_LARGE_SERVICES:-10000} REALS=10

make_services "$SERVICES" "$REALS" >"$SCRATCH/rules"
kipvs restore <"$SCRATCH/rules" || fail "kipvs restore of $SERVICES services failed"

ipvsadm -Sn >"$SCRATCH/dump"
assert_eq "$SERVICES" "$(grep -c '^-A' "$SCRATCH/dump")" "virtual servers in ipvsadm -Sn"
assert_eq "$((SERVICES * REALS))" "$(grep -c '^-a' "$SCRATCH/dump")" "real servers in ipvsadm -Sn"
ipvsadm -Ln >"$SCRATCH/list"
assert_eq "$SERVICES" "$(grep -c '^TCP ' "$SCRATCH/list")" "virtual servers in ipvsadm -Ln"
assert_eq "$((SERVICES * REALS))" "$(grep -c '^  -> [0-9]' "$SCRATCH/list")" "real servers in ipvsadm -Ln"

sort "$SCRATCH/rules" >"$SCRATCH/expected"
sort "$SCRATCH/dump" >"$SCRATCH/actual"
assert_same_file "$SCRATCH/expected" "$SCRATCH/actual" "restored table differs from the rule file"

kipvs save >"$SCRATCH/saved" || fail "kipvs save of the large table failed"
assert_same_file "$SCRATCH/dump" "$SCRATCH/saved" "kipvs save differs from ipvsadm -Sn on the large table"
