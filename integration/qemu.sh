#!/usr/bin/env bash
# Boot Debian's stock kernel under qemu (plain emulation: KVM cannot run it on these machines)
# with the host's own filesystem as its root over virtio 9p, run one script inside it as root
# with IPVS, nf_tables and bridge netfilter loaded, and exit with that script's status.
# The twin of uml.sh, for what the UML kernel lacks (nf_tables for IP traffic).
#
#   integration/qemu.sh [--mem 2G] [--timeout SECONDS] GUEST_SCRIPT [ARGS...]
#
# The guest starts in the repository root with CI and every KIPVS* variable passed through.
# Its output streams here as it runs; a missing exit status (crash, hang, timeout) is a failure.
# The kernel is prepared once per version (qemu/prepare-kernel.sh) under
# ${KIPVS_QEMU_CACHE:-/var/cache/kipvs/qemu}. The guest runs pinned to one CPU.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
# shellcheck source=integration/guest-env.sh
source "$REPO/integration/guest-env.sh"

MEM=2G
TIMEOUT=${KIPVS_QEMU_TIMEOUT:-900}
WORK=
BOOT_PID=
TAIL_PID=

usage() {
  echo "usage: $0 [--mem SIZE] [--timeout SECONDS] GUEST_SCRIPT [ARGS...]" >&2
  exit 2
}

die() {
  echo "qemu.sh: $*" >&2
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

# write_init KERNEL_DIR SCRIPT [ARGS...]: the guest's PID 1 after the initramfs hands over.
# It must reach the power-off line whatever happens, so no `set -e`.
write_init() {
  local kernel=$1 script=$2
  shift 2
  {
    echo '#!/bin/bash'
    echo 'export PATH=/usr/sbin:/usr/bin:/sbin:/bin'
    printf 'readonly GUEST_ENV=(%s)\n' "$(guest_env)"
    printf 'readonly WORK=%q REPO=%q KERNEL=%q\n' "$WORK" "$REPO" "$kernel"
    printf 'readonly SCRIPT=(%s)\n' "$(printf '%q ' "$script" "$@")"
    cat <<'EOF'
exec >/dev/console 2>&1 </dev/null
# /proc, /sys, /dev and a tmpfs on /run come from the initramfs.
mkdir -p /dev/shm /dev/pts && mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t devpts devpts /dev/pts
# /dev is the guest's bare devtmpfs; bash process substitution needs /dev/fd.
ln -sfn /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
mkdir -p /run/kipvs /run/netns
# No modules are installed for this kernel: on-demand loads (nft chain types, expressions)
# go through a wrapper that points modprobe at the prepared tree.
echo "$KERNEL/modprobe" >/proc/sys/kernel/modprobe
# One modprobe for all: each call costs about a second here.
"$KERNEL/modprobe" -a $(<"$KERNEL/modules") || echo "modprobe -a failed" >>"$WORK/output"
# Without lo up there is no local route table and adding a real server fails with EINVAL.
ip link set lo up
cd "$REPO" && env -i "${GUEST_ENV[@]}" "${SCRIPT[@]}" >>"$WORK/output" 2>&1
echo $? >"$WORK/status"
sync
# The host's poweroff is systemd's; busybox's works without an init system.
/bin/busybox poweroff -f
echo o >/proc/sysrq-trigger
sleep 10
EOF
  } >"$WORK/init"
  chmod +x "$WORK/init"
}

boot() {
  local kernel=$1
  local cpu=$(($(nproc) > 1 ? 1 : 0))
  # -smp 1 runs faster than 2 on a 2-core host; RUN= reaches the initramfs' init as a variable.
  # shellcheck disable=SC2054 # the commas belong to the options' values
  local cmd=(timeout --kill-after=10 "$TIMEOUT" taskset -c "$cpu"
    qemu-system-x86_64 -accel tcg,thread=multi -cpu max -m "$MEM" -smp 1
    -nographic -no-reboot -nic none
    -kernel "$kernel/vmlinux" -initrd "$kernel/initrd.cpio.gz"
    -append "console=ttyS0 panic=-1 quiet RUN=$WORK/init"
    -virtfs local,path=/,mount_tag=hostroot,security_model=passthrough,multidevs=remap)
  # exec: the caller's $! is then timeout itself, which passes a TERM on to qemu.
  exec "${cmd[@]}" </dev/null >"$WORK/console" 2>&1
}

# Stream the guest's output while it runs; tail --pid drains the file before it exits.
run_guest() {
  local rc=0
  : >"$WORK/output"
  boot "$1" &
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
  local qemu_rc=$1
  if [[ -s $WORK/status ]]; then
    local status
    status=$(<"$WORK/status")
    exit "$status"
  fi
  if ((qemu_rc == 124)); then
    echo "qemu.sh: the guest timed out after ${TIMEOUT}s and left no exit status" >&2
  else
    echo "qemu.sh: the guest left no exit status (qemu exited $qemu_rc); console:" >&2
  fi
  tail -n 40 "$WORK/console" >&2
  exit 1
}

# The guest mounts tmpfs over /run and /dev/shm, and RUN= must need no quoting.
scratch_parent() {
  local dir=${TMPDIR:-/tmp}
  case $dir in
    /run | /run/* | /dev/* | *[!A-Za-z0-9/._-]*) echo /tmp ;;
    *) echo "$dir" ;;
  esac
}

main() {
  while (($#)); do
    case $1 in
      --mem) MEM=${2:?}; shift 2 ;;
      --timeout) TIMEOUT=${2:?}; shift 2 ;;
      -h | --help) usage ;;
      -*) usage ;;
      *) break ;;
    esac
  done
  (($#)) || usage
  local script kernel
  [[ -f $1 ]] || die "no such guest script: $1"
  script=$(realpath "$1")
  shift
  [[ -x $script ]] || die "guest script is not executable: $script"
  command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
  kernel=$("$REPO/integration/qemu/prepare-kernel.sh") || die "cannot prepare the guest kernel"

  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  WORK=$(mktemp -d "$(scratch_parent)/kipvs-qemu.XXXXXX")
  write_init "$kernel" "$script" "$@"
  local rc=0
  run_guest "$kernel" || rc=$?
  report "$rc"
}

main "$@"
