#!/usr/bin/env bash
# Errors that used to vanish: `kipvs save` into a full device exits non-zero and says so (it
# exited 0 with the output cut short); `kipvs restore` from input it cannot read applies nothing
# and says so (it applied what it had read). And a `#` inside a word is refused, as ipvsadm
# refuses it, where it was read as a comment and the line applied without its last options.
source "$(dirname "$0")/lib.sh"

ipvsadm -A -t 10.0.0.1:80 -s rr
ipvsadm -a -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w 1
rules >"$SCRATCH/before"

# save into /dev/full: every write fails with ENOSPC.
rc=0
out=$(kipvs save 2>&1 >/dev/full) || rc=$?
((rc != 0)) || fail "save into /dev/full exited 0"
assert_contains "$out" "save: writing standard output: No space left on device.*the output is incomplete" "save into /dev/full"
echo "save > /dev/full: exit $rc: $out"

# restore from a directory: read() fails with EISDIR before a byte arrives.
rc=0
out=$(kipvs restore 2>&1 </) || rc=$?
((rc != 0)) || fail "restore from a directory exited 0"
assert_contains "$out" "restore: reading standard input after 0 bytes: Is a directory.*nothing applied" "restore from a directory"
rules >"$SCRATCH/after"
assert_same_file "$SCRATCH/before" "$SCRATCH/after" "table after a restore that could not read its input"
echo "restore < /: exit $rc: $out"

# `#` inside a word: ipvsadm refuses the line (the witness), kipvs refuses the input.
line='-a -t 10.0.0.1:80 -r 10.1.0.2:80 -m# -w 5 -x 100'
ipvsadm_rc=0
in_fresh_netns "ipvsadm -A -t 10.0.0.1:80 -s rr && printf '%s\n' '$line' | ipvsadm -R" >/dev/null 2>&1 || ipvsadm_rc=$?
((ipvsadm_rc != 0)) || fail "the witness, ipvsadm -R, accepted: $line"
rc=0
out=$(printf '%s\n' "$line" | kipvs restore 2>&1) || rc=$?
((rc != 0)) || fail "kipvs restore accepted: $line"
assert_contains "$out" "line 1: unknown option -m#" "kipvs restore of $line"
rules >"$SCRATCH/after"
assert_same_file "$SCRATCH/before" "$SCRATCH/after" "table after a refused '#' line"
echo "$line: ipvsadm exit $ipvsadm_rc, kipvs: $out"

# A word that starts with `#` is a comment to kipvs: the rest of the line is not applied.
printf '%s\n' '-a -t 10.0.0.1:80 -r 10.1.0.3:80 -m #-w 5' | kipvs restore
grep -qxF -- "-a -t 10.0.0.1:80 -r 10.1.0.3:80 -m -w 1" <<<"$(ipvsadm -Sn)" || fail "a commented line was not applied as written"

# For the record (not a check): what ipvsadm makes of a whole-word comment.
rc=0
out=$(in_fresh_netns "printf '%s\n' '-A -t 10.0.0.9:80 -s rr # web' | ipvsadm -R && rules" 2>&1) || rc=$?
echo "ipvsadm -R on '-A -t 10.0.0.9:80 -s rr # web': exit $rc: $out"
