#!/usr/bin/env bash
# Guest side: kipvs restore/save against ipvsadm -R/-Sn on the same rule file, each run in a fresh
# network namespace (IPVS's per-namespace trash list would slow any re-created table).
set -euo pipefail
KIPVS=${KIPVS:?path of the kipvs binary}
SIZES=${SIZES:-"1000 10000"}
scratch=$(mktemp -d /run/bench.XXXXXX)
trap 'rm -rf "$scratch"' EXIT

# N TCP services × 10 masquerading real servers, in ipvsadm -R syntax.
generate() {
  awk -v n="$1" 'BEGIN {
    for (s = 0; s < n; s++) {
      vip = sprintf("10.%d.%d.%d", 100 + int(s / 62500), int(s / 250) % 250, s % 250 + 1)
      printf "-A -t %s:80 -s rr\n", vip
      for (r = 0; r < 10; r++)
        printf "-a -t %s:80 -r 10.200.%d.%d:8080 -m -w 1\n", vip, r, s % 250 + 1
    }
  }'
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# In a fresh namespace: restore with $1 from file $2, then save with $4; files go to $3.*.
# Prints the three timestamps around the two commands.
measure() {
  unshare -n bash -c '
    set -e
    ip link set lo up
    t0=$(date +%s.%N); $1 < "$2" 2> "$3.err"; t1=$(date +%s.%N)
    $4 > "$3.save"; t2=$(date +%s.%N)
    ipvsadm -Sn > "$3.witness"
    echo "$t0 $t1 $t2"
  ' measure "$@"
}

printf '%-8s %-8s | %-12s %-14s %-7s | %-12s %-11s %-7s | %s\n' \
  services ops "ipvsadm -R" "kipvs restore" ratio "ipvsadm -Sn" "kipvs save" ratio "kipvs syscalls/op"
for n in $SIZES; do
  rules="$scratch/rules.$n"
  generate "$n" > "$rules"
  ops=$(wc -l < "$rules")

  read -r a0 a1 a2 < <(measure "ipvsadm -R" "$rules" "$scratch/ipvsadm" "ipvsadm -Sn")
  read -r k0 k1 k2 < <(measure "$KIPVS restore --report" "$rules" "$scratch/kipvs" "$KIPVS save")

  # Both tools must have built the same table, and kipvs save must print what ipvsadm prints.
  cmp -s "$scratch/ipvsadm.witness" "$scratch/kipvs.witness" || { echo "tables differ after restore ($n)"; exit 1; }
  cmp -s "$scratch/kipvs.save" "$scratch/kipvs.witness" || { echo "kipvs save differs from ipvsadm -Sn ($n)"; exit 1; }

  ar=$(elapsed "$a0" "$a1"); kr=$(elapsed "$k0" "$k1")
  as=$(elapsed "$a1" "$a2"); ks=$(elapsed "$k1" "$k2")
  syscalls=$(awk '/system calls/ { print $1 }' "$scratch/kipvs.err")
  printf '%-8s %-8s | %-12s %-14s %-7s | %-12s %-11s %-7s | %s\n' "$n" "$ops" \
    "${ar}s" "${kr}s" "$(awk -v a="$ar" -v b="$kr" 'BEGIN { printf "%.1fx", a / b }')" \
    "${as}s" "${ks}s" "$(awk -v a="$as" -v b="$ks" 'BEGIN { printf "%.1fx", a / b }')" \
    "$(awk -v c="$syscalls" -v o="$ops" 'BEGIN { printf "%.4f", c / o }')"
done
