#!/usr/bin/env bash
# `kipvs save` prints exactly what `ipvsadm -Sn` prints, byte for byte, in the same order.
source "$(dirname "$0")/lib.sh"

# check WHAT: compare both dumps of the current table.
check() {
  ipvsadm -Sn >"$SCRATCH/expected"
  kipvs save >"$SCRATCH/actual" || fail "$1: kipvs save exited non-zero"
  assert_same_file "$SCRATCH/expected" "$SCRATCH/actual" "$1: kipvs save differs from ipvsadm -Sn"
}

check "empty table"
make_varied_table
check "varied table"
# Enough entries that a dump spans many netlink messages and receive buffers.
make_services 1000 4 | ipvsadm -R
check "varied table plus 1000 services x 4 real servers"
