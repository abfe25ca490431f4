#!/usr/bin/env bash
# Soak: the table and kipvs0 damaged behind a running agent's back, one random damage a round
# (flush, a virtual server deleted, a real server deleted or reweighted, a virtual IP unbound,
# kipvs0 deleted, a foreign virtual server added). Each round the periodic resync must bring
# kipvs' part back to the state it converged to at start, by the second sync after the damage,
# and leave every virtual server that is not kipvs' as it was.
#
#   SOAK_ROUNDS (15; make bench runs 100), SOAK_SEED (random; repeats a run's damages); through
#   uml.sh, which passes the guest only KIPVS* variables, KIPVS_SOAK_ROUNDS and KIPVS_SOAK_SEED.
source "$(dirname "$0")/pods.sh"

readonly ROUNDS=${SOAK_ROUNDS:-${KIPVS_SOAK_ROUNDS:-15}} SEED=${SOAK_SEED:-${KIPVS_SOAK_SEED:-$RANDOM}}
readonly NODE_IP=172.20.0.10 SERVICES=20
# Not kipvs': 192.0.2.0/24 is neither on kipvs0 nor a node address. Every foreign object lives
# there, so the owned part of the table is every line without it.
readonly FOREIGN=192.0.2.
readonly DAMAGES=(flush delete-virtual-server delete-real-server reweight-real-server
  unbind-address delete-interface add-foreign)
RANDOM=$SEED

# services_yaml: SERVICES Services with two endpoints each; every third UDP, every fourth NodePort.
# (One awk: a process per Service would cost seconds in the guest.)
services_yaml() {
  awk -v n="$SERVICES" -v node="$NODE_NAME" 'BEGIN {
    for (i = 0; i < n; i++) {
      protocol = i % 3 == 2 ? "UDP" : "TCP"
      type = i % 4 == 0 ? "NodePort" : "ClusterIP"
      nodePort = i % 4 == 0 ? ", nodePort: " (30100 + i) : ""
      print "---\napiVersion: v1\nkind: Service"
      print "metadata: {name: svc-" i ", namespace: default}"
      print "spec:\n  type: " type "\n  clusterIP: 10.96.1." (i + 1)
      print "  ports: [{name: p, port: 80, targetPort: 8080, protocol: " protocol nodePort "}]"
      print "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice"
      print "metadata:\n  name: svc-" i "-x1\n  namespace: default"
      print "  labels: {kubernetes.io/service-name: svc-" i "}"
      print "addressType: IPv4"
      print "ports: [{name: p, port: 8080, protocol: " protocol "}]"
      print "endpoints:"
      for (k = 2; k <= 3; k++)
        print "- {addresses: [10.244." i "." k "], conditions: {ready: true}, nodeName: " node "}"
    }
  }'
}

# The foreign virtual servers there before the agent starts, as `ipvsadm -Sn` prints them.
readonly FOREIGN_BASE="-A -t 192.0.2.99:80 -s rr
-a -t 192.0.2.99:80 -r 192.0.2.100:80 -m -w 1
-A -u 192.0.2.99:53 -s wlc
-a -u 192.0.2.99:53 -r 192.0.2.101:53 -m -w 3"

add_foreign_base() {
  ipvsadm -A -t 192.0.2.99:80 -s rr
  ipvsadm -a -t 192.0.2.99:80 -r 192.0.2.100:80 -m -w 1
  ipvsadm -A -u 192.0.2.99:53 -s wlc
  ipvsadm -a -u 192.0.2.99:53 -r 192.0.2.101:53 -m -w 3
}

# snapshot: sets STATE to kipvs' part of the table and kipvs0's IPv4 addresses (its link-local
# IPv6 address changes with a re-created interface), FOREIGN_NOW to the rest of the table.
snapshot() {
  local out
  out=$(kernel_state "$FOREIGN")
  STATE=${out%%$'\n~'*}
  [[ $STATE != "~"* ]] || STATE=
  FOREIGN_NOW=${out:${#STATE}}
  FOREIGN_NOW=${FOREIGN_NOW#$'\n'}
  FOREIGN_NOW=${FOREIGN_NOW//\~/}
}

# sync_count: the syncs the agent has logged.
sync_count() {
  grep -cE -- "$SYNC_LINE" "$KIPVS_LOG" || true
}

# repairing_sync SYNCS_BEFORE: the position (1, 2, ...) after SYNCS_BEFORE of the first sync
# that wrote, or nothing when none has yet.
repairing_sync() {
  awk -v skip="$1" '/\] synced$/ { if (++n > skip) { print n - skip; exit } }
    /\] synced, nothing changed$/ { n++ }' "$KIPVS_LOG"
}

has_repairing_sync() {
  [[ -n $(repairing_sync "$1") ]]
}

# pick VAR PATTERN FILE: a random line of FILE matching the extended regexp PATTERN.
pick() {
  local lines=()
  mapfile -t lines < <(grep -E -- "$2" "$3")
  ((${#lines[@]} > 0)) || fail "nothing matches /$2/ in $3"
  printf -v "$1" '%s' "${lines[RANDOM % ${#lines[@]}]}"
}

# damage KIND ROUND: does the damage and says what in WHAT. (Not in a subshell: bash reseeds
# RANDOM there, and the seed would no longer repeat a run.)
damage() {
  local line service real address
  case $1 in
    flush)
      ipvsadm -C
      # Theirs is gone too: put it back as its owner would, and expect it.
      add_foreign_base
      LC_ALL=C sort <<<"$FOREIGN_BASE" >"$SCRATCH/foreign.expected"
      WHAT="ipvsadm -C, foreign virtual servers re-added"
      ;;
    delete-virtual-server)
      pick line '^-A ' "$SCRATCH/baseline.owned"
      service=${line#-A } service=${service%% -s *}
      # shellcheck disable=SC2086 # "-t ADDRESS:PORT": two words
      ipvsadm -D $service
      WHAT="ipvsadm -D $service"
      ;;
    delete-real-server | reweight-real-server)
      pick line '^-a ' "$SCRATCH/baseline.owned"
      service=${line#-a } service=${service%% -r *}
      real=${line#* -r } real=${real%% *}
      if [[ $1 == delete-real-server ]]; then
        # shellcheck disable=SC2086
        ipvsadm -d $service -r "$real"
        WHAT="ipvsadm -d $service -r $real"
      else
        # shellcheck disable=SC2086
        ipvsadm -e $service -r "$real" -m -w 7
        WHAT="ipvsadm -e $service -r $real -m -w 7"
      fi
      ;;
    unbind-address)
      pick line '^kipvs0 ' "$SCRATCH/baseline"
      address=${line#kipvs0 }
      ip addr del "$address" dev kipvs0
      WHAT="ip addr del $address dev kipvs0"
      ;;
    delete-interface)
      ip link del kipvs0
      WHAT="ip link del kipvs0"
      ;;
    add-foreign)
      service="192.0.2.$((100 + $2 % 100)):$((1000 + $2))"
      ipvsadm -A -t "$service" -s rr
      ipvsadm -a -t "$service" -r 192.0.2.200:80 -m -w 2
      { printf -- '-A -t %s -s rr\n-a -t %s -r 192.0.2.200:80 -m -w 2\n' "$service" "$service"
        cat "$SCRATCH/foreign.expected"; } | LC_ALL=C sort >"$SCRATCH/foreign.next"
      mv "$SCRATCH/foreign.next" "$SCRATCH/foreign.expected"
      WHAT="ipvsadm -A -t $service (foreign)"
      ;;
    *) fail "unknown damage $1" ;;
  esac
}

# next_damage: sets KIND, the damages in a fresh random order every len(DAMAGES) rounds, so that
# a short run does each.
ORDER=()
next_damage() {
  if ((${#ORDER[@]} == 0)); then
    ORDER=("${DAMAGES[@]}")
    local i j swap
    for ((i = ${#ORDER[@]} - 1; i > 0; i--)); do
      j=$((RANDOM % (i + 1)))
      swap=${ORDER[i]} ORDER[i]=${ORDER[j]} ORDER[j]=$swap
    done
  fi
  KIND=${ORDER[0]}
  ORDER=("${ORDER[@]:1}")
}

# ---------------------------------------------------------------------------- setup

echo "soak: seed $SEED (KIPVS_SOAK_SEED=$SEED repeats the damages)"
node_address_add "$NODE_IP"
add_foreign_base
LC_ALL=C sort <<<"$FOREIGN_BASE" >"$SCRATCH/foreign.expected"
snapshot
echo "$FOREIGN_NOW" >"$SCRATCH/foreign.actual"
assert_same_file "$SCRATCH/foreign.expected" "$SCRATCH/foreign.actual" "foreign virtual servers as ipvsadm -Sn prints them"

services_yaml | manifest_write
agent_start --log-level debug --ipvs-sync-period 1s
wait_for 30 "first sync" log_count_at_least "$WRITING_SYNC_LINE" 1
wait_syncs 1
snapshot
BASELINE=$STATE
echo "$BASELINE" >"$SCRATCH/baseline"
grep '^-' "$SCRATCH/baseline" >"$SCRATCH/baseline.owned"
assert_eq $((SERVICES + SERVICES / 4)) "$(grep -c '^-A ' "$SCRATCH/baseline.owned")" "kipvs' virtual servers at start"
assert_eq "$SERVICES" "$(grep -c '^kipvs0 ' "$SCRATCH/baseline")" "virtual IPs on kipvs0 at start"

# ---------------------------------------------------------------------------- rounds

within_two=0 foreign_kept=0 failures=0 pause=0
: >"$SCRATCH/times"

# report ROUNDS_DONE: the figures.
report() {
  echo "soak: rounds $1, converged by the second sync after the damage $within_two/$1, foreign untouched $foreign_kept/$1"
  echo "soak: seconds from damage to converged: $(awk '{ print $2 }' "$SCRATCH/times" | median_max)," \
    "within two sync periods (2 s) $(awk '$2 <= 2 { n++ } END { print n + 0 }' "$SCRATCH/times")/$1"
  local kind
  for kind in "${DAMAGES[@]}"; do
    grep -q "^$kind " "$SCRATCH/times" || continue
    echo "soak:   $kind: $(grep -c "^$kind " "$SCRATCH/times") rounds, seconds" \
      "$(awk -v k="$kind" '$1 == k { print $2 }' "$SCRATCH/times" | median_max)"
  done
}

# expect_state WHAT: the owned part as at start, with a diff when not.
expect_state() {
  echo "$STATE" >"$SCRATCH/state"
  assert_same_file "$SCRATCH/baseline" "$SCRATCH/state" "$1"
}

expect_foreign() {
  echo "$FOREIGN_NOW" >"$SCRATCH/foreign.actual"
  assert_same_file "$SCRATCH/foreign.expected" "$SCRATCH/foreign.actual" "$1"
}

for ((round = 1; round <= ROUNDS; round++)); do
  next_damage
  # A random moment of the resync period.
  random_between pause 0 500
  sleep_ms "$pause"
  agent_alive || fail "kipvs exited"
  syncs_before=$(sync_count)
  start=$(now_us)
  damage "$KIND" "$round"
  deadline=$((SECONDS + 20))
  snapshot
  until [[ $STATE == "$BASELINE" ]]; do
    if ((SECONDS >= deadline)); then
      report "$((round - 1))"
      expect_state "round $round ($WHAT): kipvs' part 20 s after the damage"
    fi
    sleep 0.1
    snapshot
  done
  took=$(seconds_since "$start")
  echo "$KIND $took" >>"$SCRATCH/times"

  # Which sync wrote the repair. Its log line follows the kernel write: give it a moment.
  by=0
  if [[ $KIND != add-foreign ]]; then
    wait_for 10 "sync that wrote after round $round's damage ($WHAT)" has_repairing_sync "$syncs_before"
    by=$(repairing_sync "$syncs_before")
  fi
  if ((by <= 2)); then
    within_two=$((within_two + 1))
  else
    echo "round $round: $WHAT; repaired by sync $by after the damage" >&2
    failures=$((failures + 1))
  fi

  if [[ $FOREIGN_NOW == "$(<"$SCRATCH/foreign.expected")" ]]; then
    foreign_kept=$((foreign_kept + 1))
  else
    report "$round"
    expect_foreign "round $round ($WHAT): foreign virtual servers"
  fi
  repair="repaired by sync $by after it"
  ((by > 0)) || repair="nothing of kipvs' to repair"
  echo "round $round: $WHAT; converged in ${took}s, $repair"
done

# Syncs after the last repair leave everything alone.
wait_syncs 2
snapshot
expect_state "kipvs' part two syncs after the last round"
expect_foreign "foreign virtual servers two syncs after the last round"
report "$ROUNDS"
((failures == 0)) || fail "$failures of $ROUNDS rounds were repaired later than the second sync after the damage"
