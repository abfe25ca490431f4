#!/usr/bin/env bash
# Boot a User-Mode-Linux guest whose root is the host's own filesystem (hostfs), run one
# script inside it as root with IPVS loaded, and exit with that script's status.
#
#   integration/uml.sh [--mem 1G] [--pin] [--timeout SECONDS] GUEST_SCRIPT [ARGS...]
#
# The guest starts in the repository root with CI and every KIPVS* variable passed through.
# Its output streams here as it runs; a missing exit status (crash, hang, timeout) is a failure.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
# shellcheck source=integration/guest-env.sh
source "$REPO/integration/guest-env.sh"
readonly MODULES="ipv6 ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_sh ip_vs_dh ip_vs_mh
  ip_vs_sed ip_vs_nq ip_vs_fo ip_vs_ovf ip_vs_lblc ip_vs_lblcr veth dummy nf_conntrack"

MEM=1G
PIN=0
TIMEOUT=${KIPVS_UML_TIMEOUT:-900}
WORK=
BOOT_PID=
TAIL_PID=

usage() {
  echo "usage: $0 [--mem SIZE] [--pin] [--timeout SECONDS] GUEST_SCRIPT [ARGS...]" >&2
  exit 2
}

die() {
  echo "uml.sh: $*" >&2
  exit 1
}

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  if [[ -n $BOOT_PID ]]; then
    kill "$BOOT_PID" 2>/dev/null || true
    wait "$BOOT_PID" 2>/dev/null || true
  fi
  if [[ -n $TAIL_PID ]]; then kill "$TAIL_PID" 2>/dev/null || true; fi
  if [[ -n $WORK ]]; then rm -rf "$WORK"; fi
}

# The guest's PID 1. It must reach the power-off line whatever happens, so no `set -e`.
write_init() {
  local script=$1
  shift
  {
    echo '#!/bin/bash'
    echo 'export PATH=/usr/sbin:/usr/bin:/sbin:/bin'
    printf 'readonly GUEST_ENV=(%s)\n' "$(guest_env)"
    printf 'readonly WORK=%q REPO=%q MODULES=%q\n' "$WORK" "$REPO" "$MODULES"
    printf 'readonly SCRIPT=(%s)\n' "$(printf '%q ' "$script" "$@")"
    cat <<'EOF'
exec >/dev/console 2>&1 </dev/null
mount -t proc proc /proc
mount -t sysfs sysfs /sys
# hostfs writes land on the host disk: keep runtime state and scratch in memory.
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /dev/shm && mount -t tmpfs -o mode=1777 tmpfs /dev/shm
# /dev is the guest's bare devtmpfs; bash process substitution needs /dev/fd.
ln -sfn /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
mkdir -p /run/kipvs /run/netns /run/mods/lib/modules
# modprobe -d wants DIR/lib/modules/<version>.
ln -s "/usr/lib/uml/modules/$(uname -r)" "/run/mods/lib/modules/$(uname -r)"
for m in $MODULES; do
  modprobe -q -d /run/mods "$m" || echo "modprobe $m failed" >>"$WORK/output"
done
# Without lo up there is no local route table and adding a real server fails with EINVAL.
ip link set lo up
echo 1 >/proc/sys/net/ipv4/ip_forward
echo 1 >/proc/sys/net/ipv4/vs/conntrack
echo 1 >/proc/sys/net/ipv4/vs/expire_nodest_conn
echo 1 >/proc/sys/net/ipv4/vs/expire_quiescent_template
cd "$REPO" && env -i "${GUEST_ENV[@]}" "${SCRIPT[@]}" >>"$WORK/output" 2>&1
echo $? >"$WORK/status"
sync
# sysrq needs nothing from the host's packages; poweroff is the fallback.
echo o >/proc/sysrq-trigger
sleep 10
poweroff -f
EOF
  } >"$WORK/init"
  chmod +x "$WORK/init"
}

# UML backs guest memory with a file in $TMPDIR, else /dev/shm; containers often have a 64 MB
# /dev/shm, and a guest that outgrows it dies of SIGBUS.
memory_dir() {
  if [[ -n ${TMPDIR:-}${TMP:-}${TEMP:-} ]]; then return; fi
  local need free
  need=$(numfmt --from=iec "$MEM")
  free=$(df --output=avail -B1 /dev/shm 2>/dev/null | tail -n 1) || free=0
  if ((free < need)); then echo /tmp; fi
}

boot() {
  local cpu=$(($(nproc) > 1 ? 1 : 0))
  local dir
  dir=$(memory_dir)
  # shellcheck disable=SC2054 # the commas belong to con0's value
  local cmd=(timeout --kill-after=10 "$TIMEOUT" linux.uml "mem=$MEM" quiet
    root=/dev/root rootfstype=hostfs rootflags=/ rw "init=$WORK/init"
    con=null con0=fd:0,fd:1 "uml_dir=$WORK/uml")
  if ((PIN)); then cmd=(taskset -c "$cpu" "${cmd[@]}"); fi
  if [[ -n $dir ]]; then cmd=(env TMPDIR="$dir" "${cmd[@]}"); fi
  # exec: the caller's $! is then timeout itself, which passes a TERM on to the whole guest.
  exec "${cmd[@]}" </dev/null >"$WORK/console" 2>&1
}

# Stream the guest's output while it runs; tail --pid drains the file before it exits.
run_guest() {
  local rc=0
  : >"$WORK/output"
  boot &
  BOOT_PID=$!
  tail -n +1 -f --pid="$BOOT_PID" "$WORK/output" &
  TAIL_PID=$!
  wait "$BOOT_PID" || rc=$?
  BOOT_PID=
  wait "$TAIL_PID" || true
  TAIL_PID=
  return "$rc"
}

report() {
  local uml_rc=$1
  if [[ -s $WORK/status ]]; then
    local status
    status=$(<"$WORK/status")
    exit "$status"
  fi
  if ((uml_rc == 124)); then
    echo "uml.sh: the guest timed out after ${TIMEOUT}s and left no exit status" >&2
  else
    echo "uml.sh: the guest left no exit status (linux.uml exited $uml_rc); console:" >&2
  fi
  tail -n 40 "$WORK/console" >&2
  exit 1
}

# The guest mounts tmpfs over /run and /dev/shm, so the scratch dir must live elsewhere.
scratch_parent() {
  case ${TMPDIR:-/tmp} in
    /run | /run/* | /dev/*) echo /tmp ;;
    *) echo "${TMPDIR:-/tmp}" ;;
  esac
}

main() {
  while (($#)); do
    case $1 in
      --mem) MEM=${2:?}; shift 2 ;;
      --pin) PIN=1; shift ;;
      --timeout) TIMEOUT=${2:?}; shift 2 ;;
      -h | --help) usage ;;
      -*) usage ;;
      *) break ;;
    esac
  done
  (($#)) || usage
  local script
  [[ -f $1 ]] || die "no such guest script: $1"
  script=$(realpath "$1")
  shift
  [[ -x $script ]] || die "guest script is not executable: $script"
  command -v linux.uml >/dev/null || die "linux.uml not found (apt-get install user-mode-linux)"

  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  WORK=$(mktemp -d "$(scratch_parent)/kipvs-uml.XXXXXX")
  write_init "$script" "$@"
  local rc=0
  run_guest || rc=$?
  report "$rc"
}

main "$@"
