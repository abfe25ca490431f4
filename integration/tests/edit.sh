#!/usr/bin/env bash
# -E and -e lines given to `kipvs restore` change what ipvsadm shows, exactly as `ipvsadm -R`
# changes it: an edit sets every field, and what a line leaves out goes back to its default.
source "$(dirname "$0")/lib.sh"

cat >"$SCRATCH/base" <<'RULES'
-A -t 10.0.0.1:80 -s rr
-a -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w 1
-a -t 10.0.0.1:80 -r 10.1.0.2:80 -m -w 1 -x 10 -y 1
-A -u 10.0.0.2:53 -s rr -p 300 -M 255.255.255.0
-a -u 10.0.0.2:53 -r 10.1.0.3:53 -m
-A -t [2001:db8::1]:80 -s wlc
-a -t [2001:db8::1]:80 -r [2001:db8:1::1]:80 -m -w 2
-A -f 5 -s rr
-a -f 5 -r 10.1.0.4:0 -g
RULES
cat >"$SCRATCH/edits" <<'RULES'
-E -t 10.0.0.1:80 -s wrr -p 120 -M 255.255.255.0
-e -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w 0
-e -t 10.0.0.1:80 -r 10.1.0.2:80 -g -w 5 -x 20 -y 2
-E -u 10.0.0.2:53 -s lc
-e -u 10.0.0.2:53 -r 10.1.0.3:53 -i -w 3
-E -t [2001:db8::1]:80 -s rr -p 30
-e -t [2001:db8::1]:80 -r [2001:db8:1::1]:80 -m -w 9
-E -f 5 -s sh
RULES

cat "$SCRATCH/base" "$SCRATCH/edits" | witness_restore >"$SCRATCH/expected" ||
  fail "ipvsadm -R rejected the rule files"
ipvsadm -R <"$SCRATCH/base"
kipvs restore <"$SCRATCH/edits" || fail "kipvs restore of edit lines exited non-zero"
{ rules && echo --- && thresholds; } >"$SCRATCH/actual"
assert_same_file "$SCRATCH/expected" "$SCRATCH/actual" "table after edits"

# Spot checks, so a witness that changed nothing cannot pass.
for line in '-A -t 10.0.0.1:80 -s wrr -p 120 -M 255.255.255.0' \
  '-a -t 10.0.0.1:80 -r 10.1.0.2:80 -g -w 5' '-A -u 10.0.0.2:53 -s lc' '-A -f 5 -s sh' \
  '-a -t [2001:db8::1]:80 -r [2001:db8:1::1]:80 -m -w 9'; do
  grep -qxF -- "$line" "$SCRATCH/actual" || fail "ipvsadm -Sn lacks: $line"
done
grep -qF 'TCP 10.0.0.1:80 10.1.0.2:80 20 2' "$SCRATCH/actual" || fail "thresholds not changed"
