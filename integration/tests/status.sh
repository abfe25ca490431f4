#!/usr/bin/env bash
# `kipvs status` shows every virtual and real server ipvsadm -Ln shows; `kipvs version` works.
source "$(dirname "$0")/lib.sh"

# Every address:port (or fwmark) in `ipvsadm -Ln`.
listed_addresses() {
  ipvsadm -Ln | awk 'NR > 3 && ($1 ~ /^(TCP|UDP|SCTP|FWM)$/ || $1 == "->") { print $2 }'
}

# expect_all_addresses WHAT OUTPUT
expect_all_addresses() {
  local address
  while read -r address; do
    grep -qF -- "$address" <<<"$2" || fail "$1 does not show $address"
  done < <(listed_addresses)
}

version=$(kipvs version) || fail "kipvs version exited non-zero"
[[ -n $version ]] || fail "kipvs version printed nothing"

make_varied_table
out=$(kipvs status) || fail "kipvs status exited non-zero"
expect_all_addresses "kipvs status" "$out"
out=$(kipvs status --stats) || fail "kipvs status --stats exited non-zero"
expect_all_addresses "kipvs status --stats" "$out"

kipvs status --json >"$SCRATCH/status.json" || fail "kipvs status --json exited non-zero"
if command -v python3 >/dev/null; then
  python3 -m json.tool "$SCRATCH/status.json" >/dev/null || fail "kipvs status --json is not JSON"
fi
for address in 10.0.0.1 10.1.0.8 2001:db8::1 2001:db8:1::5; do
  grep -qF "$address" "$SCRATCH/status.json" || fail "kipvs status --json does not show $address"
done
