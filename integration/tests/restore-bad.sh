#!/usr/bin/env bash
# Bad input to `kipvs restore`: a non-zero exit, a message naming the offending line, and the
# table left as it was. A line that does not parse means nothing from the input is applied.
source "$(dirname "$0")/lib.sh"

PROBLEMS=0
readonly BEFORE=("-A -t 10.0.0.7:80 -s rr" "-a -t 10.0.0.7:80 -r 10.1.0.7:80 -m")
readonly AFTER=("-A -t 10.0.0.6:80 -s wlc")
# Lines that restate what the table already holds: applied or not, nothing changes.
readonly NOOP=("-E -t 10.0.0.1:80 -s rr" "-e -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w 1")

problem() {
  echo "  $*"
  PROBLEMS=$((PROBLEMS + 1))
}

make_baseline() {
  ipvsadm -A -t 10.0.0.1:80 -s rr
  ipvsadm -a -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w 1
  ipvsadm -A -u 10.0.0.2:53 -s wlc
  ipvsadm -Sn >"$SCRATCH/baseline"
  rules >"$SCRATCH/before"
}

reset_table() {
  ipvsadm -C
  ipvsadm -R <"$SCRATCH/baseline"
}

# run_restore NAME LINE [unchanged] < INPUT: the checks every rejected input must pass.
run_restore() {
  local name=$1 line=$2 check_table=${3:-} out rc=0
  echo "case: $name"
  out=$(kipvs restore 2>&1) || rc=$?
  ((rc != 0)) || problem "$name: exit status 0"
  grep -Eqi "line $line([^0-9]|$)" <<<"$out" || problem "$name: message does not name line $line: $out"
  rules >"$SCRATCH/after"
  if ! cmp -s "$SCRATCH/before" "$SCRATCH/after"; then
    [[ -z $check_table ]] || problem "$name: table changed: $(diff "$SCRATCH/before" "$SCRATCH/after" | tr '\n' ' ')"
    reset_table
  fi
}

# parse_error NAME BAD_LINE (backslash escapes expanded): the bad line sits between valid ones, on line 3.
parse_error() {
  { printf '%s\n' "${BEFORE[@]}"; printf '%b\n' "$2"; printf '%s\n' "${AFTER[@]}"; } >"$SCRATCH/input"
  run_restore "$1" 3 unchanged <"$SCRATCH/input"
}

# kernel_refusal NAME BAD_LINE: only no-op lines come first, so the table must stay as it was
# however the lines are batched.
kernel_refusal() {
  printf '%s\n' "${NOOP[@]}" "$2" >"$SCRATCH/input"
  run_restore "$1" 3 unchanged <"$SCRATCH/input"
}

make_baseline

parse_error "garbage line" 'this is not a rule'
parse_error "binary bytes" '\x00\xff\xfe-A -t \x80\x01\x1b[2J'
parse_error "port 70000" '-A -t 10.0.0.9:70000 -s rr'
parse_error "address out of range" '-A -t 10.0.0.300:80 -s rr'
parse_error "weight -1" '-a -t 10.0.0.7:80 -r 10.1.0.9:80 -m -w -1'
parse_error "weight too large" '-a -t 10.0.0.7:80 -r 10.1.0.9:80 -m -w 99999999999'
parse_error "unknown option" '-A -t 10.0.0.9:80 -s rr --no-such-option'
parse_error "service address missing" '-A -s rr'
parse_error "real server address missing" '-a -t 10.0.0.7:80 -r'

kernel_refusal "unknown scheduler" '-A -t 10.0.0.9:80 -s nosuch'
kernel_refusal "real server for a missing service" '-a -t 10.0.0.99:80 -r 10.1.0.1:80 -m'
kernel_refusal "service already exists" '-A -t 10.0.0.1:80 -s rr'
kernel_refusal "edit of a missing service" '-E -t 10.0.0.99:80 -s rr'
kernel_refusal "delete of a missing service" '-D -t 10.0.0.99:80'
kernel_refusal "delete of a missing real server" '-d -t 10.0.0.1:80 -r 10.1.0.99:80'

# After real changes, a refusal still names its own line; what came before may stay.
printf '%s\n' "-A -t 10.0.0.20:80 -s rr" "-a -t 10.0.0.20:80 -r 10.1.0.20:80 -m" \
  "-A -t 10.0.0.21:80 -s rr" "-A -t 10.0.0.22:80 -s nosuch" >"$SCRATCH/input"
run_restore "refusal after changes" 4 <"$SCRATCH/input"

echo "case: empty input"
kipvs restore </dev/null || problem "empty input: non-zero exit"
rules >"$SCRATCH/after"
cmp -s "$SCRATCH/before" "$SCRATCH/after" || problem "empty input: table changed"

((PROBLEMS == 0)) || fail "$PROBLEMS problems"
