# shellcheck shell=bash
# Helpers for the kernel tests, sourced by each integration/tests/*.sh. Every test runs as root
# in its own fresh network namespace inside the guest (see ../kernel-tests.sh), so it starts
# from an empty IPVS table. `ipvsadm` is the independent witness of what the kernel holds.
set -euo pipefail

: "${KIPVS:?KIPVS must name the kipvs binary under test}"
export KIPVS
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

kipvs() {
  "$KIPVS" "$@"
}

# assert_eq EXPECTED ACTUAL WHAT
assert_eq() {
  [[ $1 == "$2" ]] || fail "$3: expected '$1', got '$2'"
}

# assert_same_file EXPECTED_FILE ACTUAL_FILE WHAT: byte for byte, with a diff when not.
assert_same_file() {
  cmp -s "$1" "$2" && return
  echo "--- expected ($1)  +++ actual ($2)" >&2
  diff -u "$1" "$2" | head -n 60 >&2 || true
  fail "$3"
}

# assert_contains TEXT PATTERN WHAT: PATTERN is an extended regexp, matched case-insensitively.
assert_contains() {
  grep -Eqi -- "$2" <<<"$1" || fail "$3: no match for /$2/ in: $1"
}

# The table as a sorted list of self-contained rules. IPVS hashes services by a key that
# includes the namespace, so dump order differs between namespaces; sets do not.
rules() {
  ipvsadm -Sn | sort
}

# Thresholds (-x/-y) do not appear in -Sn; this lists them one real server per line.
thresholds() {
  ipvsadm -Ln --thresholds | awk '
    NR <= 3 { next }
    /^  ->/ { print svc, $2, $3, $4; next }
    { svc = $1 " " $2 }' | sort
}

# in_fresh_netns SHELL_CODE: runs bash code in another empty namespace, with lib.sh loaded.
in_fresh_netns() {
  # shellcheck disable=SC2016 # expanded by the inner shell
  unshare -n bash -c 'ip link set lo up && source "$0" && eval "$1"' "${BASH_SOURCE[0]}" "$1"
}

# witness_restore < FILE: what `ipvsadm -R` makes of FILE in an empty table, as rules then
# thresholds. This is the normal form a restore by kipvs must reproduce.
witness_restore() {
  in_fresh_netns 'ipvsadm -R && rules && echo --- && thresholds'
}

# kipvs_restore_fresh < FILE: the same with `kipvs restore`.
kipvs_restore_fresh() {
  in_fresh_netns 'kipvs restore && rules && echo --- && thresholds'
}

# A table that exercises every field -Sn can show: TCP, UDP and SCTP over IPv4 and IPv6,
# firewall marks for both families, persistence with timeouts and netmasks, scheduler flags,
# every forwarding method, weights from 0 up, connection thresholds, a service with no
# real servers.
make_varied_table() {
  ipvsadm -A -t 10.0.0.1:80 -s rr
  ipvsadm -a -t 10.0.0.1:80 -r 10.1.0.1:8080 -m -w 0
  ipvsadm -a -t 10.0.0.1:80 -r 10.1.0.2:80 -g -w 5 -x 100 -y 10
  ipvsadm -a -t 10.0.0.1:80 -r 10.1.0.3:80 -i -w 65535
  ipvsadm -A -u 10.0.0.2:53 -s sh -b sh-fallback,sh-port -p 600 -M 255.255.255.0
  ipvsadm -a -u 10.0.0.2:53 -r 10.1.0.4:5353 -m -x 1000
  ipvsadm -a -u 10.0.0.2:53 -r 10.1.0.5:5353 -m -w 2
  ipvsadm -A --sctp-service 10.0.0.3:3868 -s lc
  ipvsadm -a --sctp-service 10.0.0.3:3868 -r 10.1.0.6:3868 -m
  ipvsadm -A -t 10.0.0.4:443 -s wlc -p 3600 -M 255.255.0.0
  ipvsadm -a -t 10.0.0.4:443 -r 10.1.0.7:443 -g -w 3
  ipvsadm -A -t 10.0.0.5:8080
  ipvsadm -A -t '[2001:db8::1]:443' -s wlc -p 1800 -M 64
  ipvsadm -a -t '[2001:db8::1]:443' -r '[2001:db8:1::1]:8443' -m -w 3
  ipvsadm -a -t '[2001:db8::1]:443' -r '[2001:db8:1::2]:443' -g
  ipvsadm -a -t '[2001:db8::1]:443' -r '[2001:db8:1::3]:443' -i -w 0
  ipvsadm -A -u '[2001:db8::2]:53' -s sh -b sh-port
  ipvsadm -a -u '[2001:db8::2]:53' -r '[2001:db8:1::4]:53' -m -w 7
  ipvsadm -A --sctp-service '[2001:db8::3]:9' -s rr -p 60 -M 128
  ipvsadm -A -f 1 -s rr
  ipvsadm -a -f 1 -r 10.1.0.8:0 -m
  ipvsadm -A -f 2 -6 -s lc -p 120
  ipvsadm -a -f 2 -6 -r '[2001:db8:1::5]:0' -g -w 4
}

# make_services COUNT REALS: COUNT TCP services with REALS masquerading real servers each,
# written exactly as `ipvsadm -Sn` prints them.
make_services() {
  awk -v n="$1" -v r="$2" 'BEGIN {
    for (i = 0; i < n; i++) {
      vip = sprintf("10.%d.%d.%d:80", 96 + int(i / 65536), int(i / 256) % 256, i % 256)
      print "-A -t " vip " -s rr"
      for (k = 0; k < r; k++) {
        j = i * r + k
        printf "-a -t %s -r 172.%d.%d.%d:8080 -m -w 1\n", vip, 16 + int(j / 65536), int(j / 256) % 256, j % 256
      }
    }
  }'
}

# ---------------------------------------------------------------------------- soak figures

# now_us: microseconds since the epoch, from bash's own clock (no process started).
now_us() {
  local now=$EPOCHREALTIME
  echo "${now/./}"
}

# seconds_since START_US: seconds from START_US (a now_us value) to now, three decimals.
seconds_since() {
  local us=$(($(now_us) - $1))
  printf '%d.%03d\n' $((us / 1000000)) $((us % 1000000 / 1000))
}

# sleep_ms MS
sleep_ms() {
  sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"
}

# random_between VAR MIN MAX: sets VAR from bash's RANDOM, so RANDOM=SEED repeats a run. (A
# function printing its pick would run in a subshell, whose draws the caller never sees.)
random_between() {
  printf -v "$1" '%d' $(($2 + RANDOM % ($3 - $2 + 1)))
}

# median_max < NUMBERS: "median M, max X" of numbers given one a line.
median_max() {
  sort -n | awk '{ v[NR] = $1 }
    END { if (NR == 0) print "none"; else printf "median %s, max %s\n", v[int((NR + 1) / 2)], v[NR] }'
}

# kernel_state [MARK]: the table as `ipvsadm -Sn` prints it and kipvs0's IPv4 addresses as
# "kipvs0 ADDRESS/LENGTH" lines ("kipvs0 missing: ..." without kipvs0, none while it is down), in
# one list sorted bytewise; table lines that contain the text MARK come last, each led by "~".
# Few processes, for polling: the guest starts one slowly, and bash reading lines costs a system
# call a byte.
# shellcheck disable=SC2120 # MARK is optional
kernel_state() {
  { ipvsadm -Sn; ip -o -4 addr show dev kipvs0 up 2>&1 || true; } | awk -v mark="${1-}" '
    /^-/ { print (mark != "" && index($0, mark) ? "~" : "") $0; next }
    $3 == "inet" { print "kipvs0", $4; next }
    { print "kipvs0 missing:", $0 }' | LC_ALL=C sort
}
