#!/usr/bin/env bash
# What `ipvsadm -Sn` prints, `kipvs restore` rebuilds in an empty table, field for field.
source "$(dirname "$0")/lib.sh"

make_varied_table
ipvsadm -Sn >"$SCRATCH/rules"
rules >"$SCRATCH/expected"
in_fresh_netns 'kipvs restore && rules' <"$SCRATCH/rules" >"$SCRATCH/actual" ||
  fail "kipvs restore of ipvsadm -Sn output failed"
assert_same_file "$SCRATCH/expected" "$SCRATCH/actual" "table rebuilt from ipvsadm -Sn output"
