#!/usr/bin/env bash
# Guest side (qemu: the stock kernel has nf_tables for IP): kipvs programming the packet filter
# for 10,000 Services x 10 endpoints (a tenth NodePort, one endpoint in ten on this node), the
# whole state and then one endpoint change, next to `nft -f` of the same table and the same change.
# Each run gets a fresh network namespace. Prints figures; asserts nothing.
set -euo pipefail
BENCH=${KIPVS_PACKET_FILTER_BENCH:?path of the packet-filter-bench binary}
SERVICES=${KIPVS_BENCH_SERVICES:-10000}
scratch=$(mktemp -d /run/packet-filter-bench.XXXXXX)
trap 'rm -rf "$scratch"' EXIT

echo "== packet filter: $SERVICES Services x 10 endpoints, first sync and one endpoint change"
unshare -n "$BENCH" "$SERVICES" "$scratch/full.nft" "$scratch/change.nft"

# nft on the identical table, in a namespace of its own: the time of the whole command.
unshare -n bash -c '
  ms() { echo $(( ($2 - $1) / 1000000 )); }
  t0=$(date +%s%N); nft -f "$1"; t1=$(date +%s%N)
  nft -f "$2"; t2=$(date +%s%N)
  echo "nft -f:             full state $(ms "$t0" "$t1") ms, one endpoint change $(ms "$t1" "$t2") ms (process start included)"
  t3=$(date +%s%N); nft list table inet kipvs >/dev/null; t4=$(date +%s%N)
  echo "nft list table:     $(ms "$t3" "$t4") ms"
' bench "$scratch/full.nft" "$scratch/change.nft"
t0=$(date +%s%N); nft --version >/dev/null; t1=$(date +%s%N)
echo "(one nft process start in this guest: $(( (t1 - t0) / 1000000 )) ms)"
