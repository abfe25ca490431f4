#!/usr/bin/env bash
# A hand-written rule file (defaults left out, options in any order, thresholds, IPv6) ends up
# as the same table whether `ipvsadm -R` or `kipvs restore` reads it.
source "$(dirname "$0")/lib.sh"

cat >"$SCRATCH/rules" <<'RULES'
-A -t 10.0.0.1:80
-a -t 10.0.0.1:80 -r 10.1.0.1
-a -t 10.0.0.1:80 -w 3 -r 10.1.0.2:8080 -m
-A -s rr -u 10.0.0.2:53
-a -u 10.0.0.2:53 -r 10.1.0.3:5353 -m -w 0 -x 50 -y 5
-A -t 10.0.0.3:443 -M 255.255.255.0 -p 3600 -s sh
-a -t 10.0.0.3:443 -r 10.1.0.4:443 -g -w 2
-a -t 10.0.0.3:443 -r 10.1.0.5 -i -x 10
-A --sctp-service 10.0.0.4:3868 -s lc -p
-a --sctp-service 10.0.0.4:3868 -r 10.1.0.6:3868 -m
-A -t [2001:db8::10]:80 -s wlc -p 60 -M 128
-a -t [2001:db8::10]:80 -r [2001:db8:1::10]:8080 -m -w 10
-a -t [2001:db8::10]:80 -r [2001:db8:1::11]:80 -g
-A -f 7 -s rr
-a -f 7 -r 10.1.0.7 -g
-a -f 7 -r 10.1.0.8 -m -w 9
RULES

witness_restore <"$SCRATCH/rules" >"$SCRATCH/expected" || fail "ipvsadm -R rejected the rule file"
kipvs_restore_fresh <"$SCRATCH/rules" >"$SCRATCH/actual" || fail "kipvs restore failed"
assert_same_file "$SCRATCH/expected" "$SCRATCH/actual" "table restored from a hand-written file"
