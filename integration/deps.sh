#!/usr/bin/env bash
# Installs the Debian packages that building kipvs and testing it in its UML and qemu guests
# need: only the missing ones, so on a machine that has them all this is one dpkg-query.
set -euo pipefail

# nft and conntrack are witnesses in the packet tests only; kipvs itself never runs them.
readonly PACKAGES=(user-mode-linux ipvsadm iproute2 kmod libmnl-dev util-linux
  qemu-system-x86 busybox-static xz-utils gcc libnftnl-dev libnetfilter-conntrack-dev nftables conntrack)

missing_packages() {
  local p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${db:Status-Status}\n' "$p" 2>/dev/null | grep -qx installed || echo "$p"
  done
  # The API source's tests check the test server with the real kubectl, from whichever package has it.
  command -v kubectl >/dev/null || echo kubernetes-client
}

main() {
  command -v dpkg-query >/dev/null || { echo "deps.sh: not a Debian system; install ${PACKAGES[*]}" >&2; exit 1; }
  local missing
  missing=$(missing_packages)
  [[ -n $missing ]] || return 0
  # shellcheck disable=SC2086 # one package per word
  set -- $missing
  ((EUID == 0)) || { echo "deps.sh: run as root to install: $*" >&2; exit 1; }
  echo "deps.sh: installing $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "$@"
}

main "$@"
