#!/usr/bin/env bash
# The agent on the Kubernetes API source. kube-api-test-server serves Services and EndpointSlices
# on loopback; this script changes them and injects faults through its admin port, and a client
# sends real traffic to the pods behind a ClusterIP. Scaling an EndpointSlice up and down reaches
# the kernel and moves new connections; churn with closed watches, 410 Gone (as an ERROR event
# and as a response status) and a failed watch converges to the server's final state; while the
# API refuses connections no virtual server is removed, and a change made meanwhile is applied
# once it is back.
source "$(dirname "$0")/pods.sh"

readonly API_SERVER=${KIPVS_API_SERVER:-$(dirname "$KIPVS")/kube-api-test-server}
readonly API_PORT=16443 ADMIN_PORT=16444
readonly ADMIN=http://127.0.0.1:$ADMIN_PORT/admin
readonly KUBECONFIG_PATH=$SCRATCH/kubeconfig
readonly API_LOG=$SCRATCH/api-server.log
readonly VIP=10.96.0.40 CHURN_VIP=10.96.0.41
readonly CHURN_STEPS=24

# A failure shows the end of both logs.
fail() {
  echo "FAIL: $*" >&2
  if [[ -s $API_LOG ]]; then
    echo "--- last lines of the API server's log" >&2
    tail -n 15 "$API_LOG" >&2
  fi
  if [[ -s $KIPVS_LOG ]]; then
    echo "--- last lines of the kipvs log" >&2
    tail -n 30 "$KIPVS_LOG" >&2
  fi
  exit 1
}

# ---------------------------------------------------------------------------- the API server

server_start() {
  [[ -x $API_SERVER ]] || fail "no test API server at $API_SERVER (set KIPVS_API_SERVER)"
  "$API_SERVER" --listen "127.0.0.1:$API_PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
    --kubeconfig-out "$KUBECONFIG_PATH" >/dev/null 2>>"$API_LOG" &
  PIDS+=($!)
  wait_for 30 "kubeconfig from the API server" test -s "$KUBECONFIG_PATH"
}

# admin PATH CURL_ARGS...: one admin request; the test fails unless it succeeds.
admin() {
  local path=$1 answer
  shift
  answer=$(curl -sS --fail-with-body --max-time 30 "$@" "$ADMIN/$path" 2>&1) || fail "admin $path: $answer"
  echo "$answer"
}

# apply < YAML: creates or replaces the objects; the server has them when this returns.
apply() {
  admin apply -X POST --data-binary @- >/dev/null
}

fault() {
  admin "fault?$1" -X POST >/dev/null
}

delete_object() {
  admin "delete?kind=$1&namespace=default&name=$2" -X POST >/dev/null
}

open_watches() {
  admin state | sed -n 's/.*"openWatches":\([0-9]*\).*/\1/p'
}

# Both reflectors (Services, EndpointSlices) are watching, so that a fault reaches both.
both_watching() {
  agent_alive || fail "kipvs exited"
  (($(open_watches) >= 2))
}

no_watches() {
  (($(open_watches) == 0))
}

api_refusing() {
  ! curl -s --max-time 2 -o /dev/null "http://127.0.0.1:$API_PORT/version"
}

# service_yaml NAME VIP: a ClusterIP Service, port 80 to the pods' 8080.
service_yaml() {
  cat <<YAML
---
apiVersion: v1
kind: Service
metadata: {name: $1, namespace: default}
spec:
  type: ClusterIP
  clusterIP: $2
  clusterIPs: [$2]
  ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]
YAML
}

# ---------------------------------------------------------------------------- the agent

agent_start_kubernetes() {
  "$KIPVS" run --source kubernetes --kubeconfig "$KUBECONFIG_PATH" --hostname-override "$NODE_NAME" \
    --log-level debug >>"$KIPVS_LOG" 2>&1 &
  KIPVS_PID=$!
}

real_server() {
  echo "-a -t $VIP:80 -r $(pod_ip "$1"):8080 -m -w $2"
}

# A pod taken out of the EndpointSlice drains at weight 0 while IPVS still counts connections
# to it (TIME_WAIT lasts two minutes), or is gone: either way it is no longer at weight 1.
not_serving() {
  lacks_rule "$(real_server "$1" 1)"
}

# check_traffic POD...: new connections from the client reach exactly these pods.
check_traffic() {
  local answers
  answers=$(http_get client "$VIP" 80 $((4 * $#)))
  echo "new connections: $(tally <<<"$answers")"
  assert_eq "$(printf '%s\n' "$@" | sort)" "$(distinct <<<"$answers")" "pods that answered"
}

# ---------------------------------------------------------------------------- final state

# The churn Service's endpoints after step I: one to three of seven addresses, no pods behind them.
churn_addresses() {
  local i=$1 k
  for ((k = 0; k <= i % 3; k++)); do echo "10.244.200.$(((i + k) % 7 + 1))"; done
}

declare -A EXTRA=()
WEB_PODS=()
CHURN_STEP=

# The table the server's objects call for, as `ipvsadm -Sn | sort` prints it.
expected_rules() {
  local pod address name
  {
    echo "-A -t $VIP:80 -s rr"
    for pod in "${WEB_PODS[@]}"; do real_server "$pod" 1; done
    if [[ -n $CHURN_STEP ]]; then
      echo "-A -t $CHURN_VIP:80 -s rr"
      for address in $(churn_addresses "$CHURN_STEP"); do echo "-a -t $CHURN_VIP:80 -r $address:8080 -m -w 1"; done
    fi
    for name in "${!EXTRA[@]}"; do
      echo "-A -t ${EXTRA[$name]}:80 -s rr"
      echo "-a -t ${EXTRA[$name]}:80 -r 10.244.201.1:8080 -m -w 1"
    done
  } | sort
}

# The kernel's table, less the web pods still draining at weight 0.
actual_rules() {
  ipvsadm -Sn | grep -vE -- "^-a -t ${VIP//./\\.}:80 .* -w 0$" | sort || true
}

converged() {
  agent_alive || fail "kipvs exited"
  [[ $(actual_rules) == "$(expected_rules)" ]]
}

wait_converged() {
  local deadline=$((SECONDS + $1))
  until converged; do
    if ((SECONDS >= deadline)); then
      echo "--- expected  +++ kernel" >&2
      diff <(expected_rules) <(actual_rules) >&2 || true
      fail "the kernel did not converge to the server's objects within $1s"
    fi
    sleep 0.2
  done
}

# ---------------------------------------------------------------------------- the test

setup() {
  pod_add pod-a 1
  pod_add pod-b 2
  pod_add pod-c 3
  client_add client 1
  server_start
  WEB_PODS=(pod-a pod-b)
  { service_yaml web "$VIP"; slice_yaml web "http:8080" "${WEB_PODS[@]}"; } | apply
  agent_start_kubernetes
  pods_wait_ready
  wait_rule "$(real_server pod-a 1)"
  wait_rule "$(real_server pod-b 1)"
}

scale() {
  WEB_PODS=("$@")
  slice_yaml web "http:8080" "$@" | apply
}

# Several changes in quick succession, with the watches closed, expired (410 as an ERROR event,
# then as the status of the next watch) and failed (500) in between.
churn() {
  local i name restarts_before
  restarts_before=$(log_count 'watch expired; relisting')
  service_yaml churn "$CHURN_VIP" | apply
  for ((i = 1; i <= CHURN_STEPS; i++)); do
    # shellcheck disable=SC2046 # one address per word
    slice_yaml churn "http:8080" $(churn_addresses "$i") | apply
    CHURN_STEP=$i
    if ((i % 4 == 0)); then
      name=extra-$i
      { service_yaml "$name" "10.96.1.$i"; slice_yaml "$name" "http:8080" 10.244.201.1; } | apply
      EXTRA[$name]=10.96.1.$i
    elif ((i % 4 == 2 && i > 6)); then
      name=extra-$((i - 6))
      delete_object EndpointSlice "$name-x1"
      delete_object Service "$name"
      unset "EXTRA[$name]"
    fi
    case $i in
      6 | 20) wait_for 20 "both watches open" both_watching; fault type=close-watches ;;
      10) wait_for 20 "both watches open" both_watching; fault type=gone-event ;;
      14) wait_for 20 "both watches open" both_watching; fault type=gone-status ;;
      17) fault "type=fail&status=500&count=1&request=watch"; fault type=close-watches ;;
      22) fault type=bookmark ;;
    esac
    sleep 0.1
  done
  echo "churn: $CHURN_STEPS EndpointSlice changes, $((CHURN_STEPS / 4)) Services added, some deleted," \
    "with faults; server at resourceVersion $(admin state | sed -n 's/.*"resourceVersion":"\([0-9]*\)".*/\1/p')"
  wait_converged 60
  local expired refused
  expired=$(($(log_count 'watch expired; relisting') - restarts_before))
  refused=$(log_count '410.*watch refused|watch refused.*410')
  echo "the agent relisted after $expired ERROR events and $refused watches refused with 410"
  ((expired >= 2)) || fail "expected both reflectors to relist after the 410 ERROR event, saw $expired"
  ((refused >= 2)) || fail "expected both reflectors' watches to be refused with 410, saw $refused"
}

# The API refuses connections for a while: the agent keeps the kernel as it is, then applies
# what changed meanwhile. The outage lasts OUTAGE seconds and at least 5 samples of the table.
readonly OUTAGE=6
outage() {
  local before now samples=0 start
  before=$(ipvsadm -Sn | grep '^-A' | sort)
  fault type=refuse
  start=$SECONDS
  wait_for 10 "the API to refuse connections" api_refusing
  wait_for 10 "every watch to end" no_watches
  # Made while the agent cannot see it: pod-b back in, the churn Service and its slice gone.
  scale pod-a pod-b
  delete_object EndpointSlice churn-x1
  delete_object Service churn
  CHURN_STEP=
  while ((SECONDS - start < OUTAGE || samples < 5)); do
    agent_alive || fail "kipvs exited while the API refused connections"
    now=$(ipvsadm -Sn | grep '^-A' | sort)
    [[ $now == "$before" ]] || fail "virtual servers changed while the API refused connections:
$(diff <(echo "$before") <(echo "$now"))"
    not_serving pod-b || fail "a change reached the kernel while the API refused connections"
    samples=$((samples + 1))
    sleep 0.2
  done
  api_refusing || fail "the API accepted connections during the outage"
  fault type=accept
  echo "API refused connections for $((SECONDS - start))s; $samples samples of ipvsadm -Sn, every virtual server still there"
  start=$SECONDS
  wait_converged 60
  echo "the change made during the outage applied $((SECONDS - start))s after the API came back"
}

setup
echo "web: pod-a, pod-b"
check_traffic pod-a pod-b

scale pod-a pod-b pod-c
wait_rule "$(real_server pod-c 1)"
echo "web scaled to 3"
check_traffic pod-a pod-b pod-c

scale pod-a
wait_for 20 "pod-b out of service" not_serving pod-b
wait_for 20 "pod-c out of service" not_serving pod-c
has_rule "$(real_server pod-a 1)" || fail "pod-a left the kernel when scaling down"
echo "web scaled to 1"
check_traffic pod-a

churn
outage
check_traffic pod-a pod-b
agent_alive || fail "kipvs exited"
