#!/usr/bin/env bash
# Prepares Debian's stock kernel for integration/qemu.sh and prints the directory that holds it:
#
#   vmlinux          the uncompressed kernel (qemu boots an ELF through its PVH note; the
#                    bzImage's own decompressor takes most of a minute under emulation)
#   initrd.cpio.gz   busybox and the virtio/9p modules that mount the host's root
#   root/            the package's modules with their modules.dep (for modprobe -d)
#   modprobe         the wrapper the guest's kernel runs to load modules on demand
#   modules          the modules the guest loads at boot, those this kernel has
#
# Built once per kernel version under ${KIPVS_QEMU_CACHE:-/var/cache/kipvs/qemu}/VERSION/
# and reused while it is complete; nothing is installed on the host.
set -euo pipefail

readonly HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly CACHE=${KIPVS_QEMU_CACHE:-/var/cache/kipvs/qemu}
# What the packet tests need, checked against the kernel: names it lacks are left out.
readonly WANTED="ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_sh ip_vs_dh ip_vs_mh ip_vs_sed
  ip_vs_nq ip_vs_fo ip_vs_ovf ip_vs_lblc ip_vs_lblcr ip_vs_twos nf_tables nft_ct nft_nat
  nft_chain_nat nft_masq nft_reject_inet nft_fib_inet nft_numgen nft_limit nf_conntrack_netlink
  nfnetlink veth dummy bridge br_netfilter ipv6"
# The initramfs mounts the host's root over virtio 9p.
readonly BOOT_MODULES="virtio_pci 9pnet_virtio 9p"

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
TMP=

die() {
  echo "prepare-kernel.sh: $*" >&2
  exit 1
}

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  if [[ -n $TMP ]]; then rm -rf "$TMP"; fi
}

# The versioned package behind the metapackage, e.g. linux-image-6.1.0-57-amd64.
kernel_package() {
  apt-cache show --no-all-versions linux-image-amd64 2>/dev/null |
    sed -n 's/^Depends: .*\(linux-image-[0-9][^ ,]*\).*/\1/p' | head -n 1
}

# The newest complete kernel already prepared, for a machine whose package lists say nothing.
cached_version() {
  local dir
  for dir in $(ls -1d "$CACHE"/*/ 2>/dev/null | sort -V -r); do
    [[ -f $dir/ready ]] && { basename "$dir"; return; }
  done
  return 0
}

kernel_version() {
  local package
  package=$(kernel_package)
  if [[ -z $package ]]; then
    # A fresh machine has no package lists yet.
    apt-get update >&2 || true
    package=$(kernel_package)
  fi
  if [[ -n $package ]]; then echo "${package#linux-image-}"; return; fi
  cached_version
}

# extract_vmlinux VMLINUZ OUT: the bzImage carries the kernel as an xz stream after its
# decompressor; grep finds the stream's magic, xz stops at the stream's end.
extract_vmlinux() {
  local offset
  offset=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$1" | head -n 1 | cut -d: -f1) || true
  [[ -n $offset ]] || die "no xz stream in $1"
  tail -c +$((offset + 1)) "$1" >"$2.xz"
  xz -dc --single-stream "$2.xz" >"$2"
  rm -f "$2.xz"
  [[ $(head -c 4 "$2" | od -An -tx1 | tr -d ' ') == 7f454c46 ]] || die "$1 did not hold an ELF kernel"
}

# build_initramfs DIR KVER: busybox, the boot modules in load order, and the first-stage init.
build_initramfs() {
  local dir=$1 kver=$2 tree=$1/initramfs module
  mkdir -p "$tree/bin" "$tree/lib"
  cp "$(command -v busybox)" "$tree/bin/busybox"
  file_is_static "$tree/bin/busybox" || die "busybox is not static (apt-get install busybox-static)"
  cp "$HERE/initramfs-init" "$tree/init"
  chmod 755 "$tree/init"
  # -a: without it the later names are taken as parameters of the first.
  modprobe -d "$dir/root" -S "$kver" -a --show-depends $BOOT_MODULES |
    awk '$1 == "insmod" && !seen[$2]++ { print $2 }' >"$dir/boot-modules"
  [[ -s $dir/boot-modules ]] || die "no modules for $BOOT_MODULES in $kver"
  while read -r module; do
    cp "$module" "$tree/lib/"
    basename "$module" >>"$tree/modules"
  done <"$dir/boot-modules"
  rm "$dir/boot-modules"
  (cd "$tree" && find . | busybox cpio -o -H newc 2>/dev/null) | gzip -1 >"$dir/initrd.cpio.gz"
  rm -rf "$tree"
}

# The initramfs has no libraries: busybox must be the static build.
file_is_static() {
  ! ldd "$1" >/dev/null 2>&1
}

# available_modules DIR KVER: the wanted names this kernel has, as a module or built in.
available_modules() {
  local name have=()
  for name in $WANTED; do
    if modprobe -d "$1/root" -S "$2" -n -q "$name" 2>/dev/null; then have+=("$name"); fi
  done
  echo "${have[*]}"
}

# download KVER: the kernel package into $TMP.
download() {
  # apt's download sandbox user cannot write to a root-owned directory.
  (cd "$TMP" && apt-get download -q -o APT::Sandbox::User=root "linux-image-$1" >&2)
}

# prepare KVER: from the package in $TMP to $CACHE/KVER.
prepare() {
  local kver=$1 final=$CACHE/$1
  echo "prepare-kernel.sh: preparing linux-image-$kver in $final" >&2
  dpkg-deb -x "$TMP"/linux-image-"$kver"_*.deb "$TMP/root"
  rm -f "$TMP"/*.deb
  # The package ships no modules.dep; modprobe -d needs one.
  depmod -b "$TMP/root" "$kver"
  extract_vmlinux "$TMP/root/boot/vmlinuz-$kver" "$TMP/vmlinux"
  rm -rf "$TMP/root/boot" "$TMP/root/usr"
  build_initramfs "$TMP" "$kver"
  available_modules "$TMP" "$kver" >"$TMP/modules"
  printf '#!/bin/sh\n# The kernel runs this to load a module on demand; none are installed for it.\nexec %s -d %s "$@"\n' \
    "$(command -v modprobe)" "$final/root" >"$TMP/modprobe"
  chmod 755 "$TMP/modprobe"
  echo "$kver" >"$TMP/ready"
  [[ ! -e $final ]] || rm -rf "$final"
  # Another run may have finished first; its copy is as good as ours.
  if ! mv -T "$TMP" "$final" 2>/dev/null; then
    [[ -f $final/ready ]] || die "cannot move the prepared kernel to $final"
    return
  fi
  TMP=
}

main() {
  local kver
  kver=$(kernel_version)
  [[ -n $kver ]] || die "cannot resolve linux-image-amd64 (apt-get update?) and nothing is cached in $CACHE"
  if [[ ! -f $CACHE/$kver/ready ]]; then
    ((EUID == 0)) || die "run as root to prepare the kernel in $CACHE"
    mkdir -p "$CACHE"
    trap cleanup EXIT
    TMP=$(mktemp -d "$CACHE/.prepare.XXXXXX")
    chmod 755 "$TMP"
    if ! download "$kver"; then
      # Old package lists name a kernel the archive no longer has.
      apt-get update >&2 || true
      kver=$(kernel_version)
      if [[ ! -f $CACHE/$kver/ready ]]; then
        download "$kver" || die "cannot download linux-image-$kver"
      fi
    fi
    [[ -f $CACHE/$kver/ready ]] || prepare "$kver"
  fi
  echo "$CACHE/$kver"
}

main "$@"
