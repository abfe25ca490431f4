#!/usr/bin/env bash
# -D and -d lines given to `kipvs restore` remove exactly what they name.
source "$(dirname "$0")/lib.sh"

cat >"$SCRATCH/deletes" <<'RULES'
-d -t 10.0.0.1:80 -r 10.1.0.2:80
-D -u 10.0.0.2:53
-d -t [2001:db8::1]:443 -r [2001:db8:1::1]:8443
-D --sctp-service 10.0.0.3:3868
-D -f 1
-d -u [2001:db8::2]:53 -r [2001:db8:1::4]:53
RULES

in_fresh_netns 'make_varied_table && ipvsadm -R && rules && echo --- && thresholds' \
  <"$SCRATCH/deletes" >"$SCRATCH/expected" || fail "ipvsadm -R rejected the delete lines"
make_varied_table
kipvs restore <"$SCRATCH/deletes" || fail "kipvs restore of delete lines exited non-zero"
{ rules && echo --- && thresholds; } >"$SCRATCH/actual"
assert_same_file "$SCRATCH/expected" "$SCRATCH/actual" "table after deletes"

# Spot checks, so a witness that changed nothing cannot pass.
for gone in '10.1.0.2:80' '10.0.0.2:53' '[2001:db8:1::1]:8443' '10.0.0.3:3868' '-f 1 ' '[2001:db8:1::4]'; do
  ! grep -qF -- "$gone" "$SCRATCH/actual" || fail "still in the table: $gone"
done
for kept in '-A -t 10.0.0.1:80 -s rr' '-a -t 10.0.0.1:80 -r 10.1.0.1:8080 -m -w 0' \
  '-A -u [2001:db8::2]:53 -s sh -b sh-port' '-a -f 2 -6 -r [2001:db8:1::5]:0 -g -w 4'; do
  grep -qxF -- "$kept" "$SCRATCH/actual" || fail "missing from the table: $kept"
done
