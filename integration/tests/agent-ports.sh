#!/usr/bin/env bash
# A Service with two named ports whose targetPorts are container port names reaches each port's
# own container port (the EndpointSlice carries the numbers), and a UDP Service answers.
source "$(dirname "$0")/pods.sh"

readonly WEB=10.96.0.30 DNS=10.96.0.31

setup() {
  pod_add pod-a 1 8080,9090 5353
  pod_add pod-b 2 8080,9090 5353
  client_add client 1
  manifest_write <<YAML
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: $WEB
  ports:
  - {name: http, port: 80, targetPort: web}
  - {name: metrics, port: 9100, targetPort: metrics}
$(slice_yaml web "http:8080,metrics:9090" pod-a pod-b)
---
apiVersion: v1
kind: Service
metadata: {name: dns, namespace: default}
spec:
  clusterIP: $DNS
  ports: [{name: dns, port: 53, protocol: UDP, targetPort: dns}]
$(slice_yaml dns "dns:5353:UDP" pod-a pod-b)
YAML
  agent_start
  pods_wait_ready
  wait_rule "-a -u $DNS:53 -r $(pod_ip pod-b):5353 -m -w 1"
  wait_rule "-a -t $WEB:9100 -r $(pod_ip pod-b):9090 -m -w 1"
}

# expect_ports WHAT PORT ANSWERS: every answer came from PORT, and from both pods.
expect_ports() {
  local what=$1 port=$2 answers=$3
  echo "$what: $(tally <<<"$answers")"
  [[ $(awk '{ print $2 }' <<<"$answers" | sort -u) == "$port" ]] ||
    fail "$what: wanted every answer from port $port, got: $answers"
  [[ $(distinct <<<"$answers") == $'pod-a\npod-b' ]] || fail "$what: not spread over both pods: $answers"
}

setup
expect_ports "$WEB:80 (http)" 8080 "$(http_get client "$WEB" 80 4)"
expect_ports "$WEB:9100 (metrics)" 9090 "$(http_get client "$WEB" 9100 4)"
expect_ports "$DNS:53/udp" 5353 "$(udp_ask client "$DNS" 53 4)"
lacks_rule "-A -t $DNS:53 -s rr" || fail "a UDP-only Service got a TCP virtual server"
