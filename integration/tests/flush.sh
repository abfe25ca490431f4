#!/usr/bin/env bash
# `kipvs flush` empties the table; `kipvs restore --flush` replaces it with the input.
source "$(dirname "$0")/lib.sh"

make_varied_table
kipvs flush || fail "kipvs flush exited non-zero"
assert_eq "" "$(ipvsadm -Sn)" "ipvsadm -Sn after kipvs flush"
kipvs flush || fail "kipvs flush of an empty table exited non-zero"

make_varied_table
# 10.0.0.1:80 already exists with rr: without the flush this input would be refused.
cat >"$SCRATCH/rules" <<'RULES'
-A -t 10.0.0.1:80 -s lc
-a -t 10.0.0.1:80 -r 10.2.0.1:80 -m -w 2
-A -u [2001:db8::9]:53 -s rr
-a -u [2001:db8::9]:53 -r [2001:db8:2::1]:53 -m -x 5
RULES
witness_restore <"$SCRATCH/rules" >"$SCRATCH/expected" || fail "ipvsadm -R rejected the rule file"
kipvs restore --flush <"$SCRATCH/rules" || fail "kipvs restore --flush exited non-zero"
{ rules && echo --- && thresholds; } >"$SCRATCH/actual"
assert_same_file "$SCRATCH/expected" "$SCRATCH/actual" "table after kipvs restore --flush"
