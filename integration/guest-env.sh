# shellcheck shell=bash
# The environment a guest script runs in, for uml.sh and qemu.sh (sourced by both).

# The guest shares the host's PATH layout, plus wherever this host's swift lives.
guest_path() {
  local path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  local swift dir=/opt/swift/usr/bin
  if swift=$(command -v swift); then dir=$(dirname "$swift"); fi
  [[ $dir == /opt/swift/usr/bin ]] || path="$dir:$path"
  echo "/opt/swift/usr/bin:$path"
}

# NAME=VALUE words for the guest script's whole environment (init's own holds kernel leftovers).
guest_env() {
  local name
  printf '%q ' "PATH=$(guest_path)" "HOME=${HOME:-/root}" LANG=C.UTF-8 \
    TMPDIR=/run/kipvs KIPVS_SCRATCH=/run/kipvs
  for name in $(compgen -e); do
    case $name in
      CI | KIPVS*) printf '%q ' "$name=${!name}" ;;
    esac
  done
}
