#!/usr/bin/env python3
"""Guest side: the agent's incremental-sync figures, timed against the kernel itself.

    syncbench.py api SERVICES           API source: first sync, change -> kernel latency, churn CPU,
                                        peak RSS, periodic resync next to ipvsadm -Sn
    syncbench.py manifest-dir SERVICES FILES
                                        file source on a directory: one endpoint change renamed
                                        into place -> kernel latency
    syncbench.py rename-wait SRC DST VIP PORT ADDRESS
                                        renames SRC to DST, prints the seconds until the kernel's
                                        virtual server VIP:PORT/TCP holds ADDRESS
    syncbench.py table FIGURES          the table of everything recorded, next to the earlier
                                        figures and the aims

Each measuring command runs in the current network namespace (the caller gives it a fresh one),
prints its figures as it goes and appends them as "KEY VALUE" lines to $KIPVS_FIGURES, which
`table` reads. Nothing is asserted: a figure that could not be taken is missing from the table.

The kernel is watched over generic netlink by this process (IPVS_CMD_GET_DEST of one virtual
server, what `ipvsadm -Ln -t VIP:PORT` asks) in a tight loop: a new ipvsadm per look costs some
60 ms in UML, a look here well under a millisecond.
"""
import http.client
import json
import os
import random
import re
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse

KIPVS = os.environ.get("KIPVS", "")
API_SERVER = os.environ.get("KIPVS_API_SERVER") or os.path.join(os.path.dirname(KIPVS), "kube-api-test-server")
SCRATCH = os.environ.get("KIPVS_SCRATCH", "/tmp")
FIGURES = os.environ.get("KIPVS_FIGURES", "")
# The pause between two looks at the kernel.
POLL_SLEEP = float(os.environ.get("KIPVS_POLL_SLEEP", "0.0002"))
# KIPVS_POLL_PRIORITY=normal: look at the kernel at normal priority, competing with the agent.
IDLE_WHILE_POLLING = os.environ.get("KIPVS_POLL_PRIORITY", "idle") == "idle"
API_PORT, ADMIN_PORT = 16443, 16444
NODE = "bench-node"
HZ = os.sysconf("SC_CLK_TCK")


def figure(key, value):
    """Records one figure for the table."""
    if FIGURES:
        with open(FIGURES, "a") as f:
            f.write(f"{key} {value}\n")


def rank(values, percent):
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * percent // 100) - 1)]


# --- IPVS over generic netlink ------------------------------------------------------------------

NETLINK_GENERIC, NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 16, 1, 4, 0x300
NLMSG_ERROR, NLMSG_DONE, GENL_ID_CTRL, CTRL_CMD_GETFAMILY = 2, 3, 0x10, 3
CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME, NLA_F_NESTED = 1, 2, 0x8000
IPVS_CMD_GET_DEST, IPVS_CMD_ATTR_SERVICE, IPVS_CMD_ATTR_DEST = 8, 1, 2
IPVS_SVC_ATTR_AF, IPVS_SVC_ATTR_PROTOCOL, IPVS_SVC_ATTR_ADDR, IPVS_SVC_ATTR_PORT = 1, 2, 3, 4
IPVS_DEST_ATTR_ADDR = 1


def attr(kind, payload):
    return struct.pack("=HH", 4 + len(payload), kind) + payload + b"\0" * (-len(payload) % 4)


def attrs(data):
    """(type without flags, payload) of each attribute in data."""
    while len(data) >= 4:
        length, kind = struct.unpack_from("=HH", data)
        yield kind & 0x3FFF, data[4:length]
        data = data[(length + 3) & ~3:]


class IPVS:
    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
        self.sock.bind((0, 0))
        self.seq = 0
        reply = self.request(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, attr(CTRL_ATTR_FAMILY_NAME, b"IPVS\0"), NLM_F_ACK)
        self.family = next(struct.unpack("=H", p[:2])[0] for m in reply for k, p in attrs(m) if k == CTRL_ATTR_FAMILY_ID)
        self.looks = 0
        self.requests = {}

    def request(self, family, command, payload, flags):
        """The genetlink payloads of every reply; [] when the kernel answers with an error."""
        self.seq += 1
        body = struct.pack("=BBH", command, 1, 0) + payload
        self.sock.send(struct.pack("=IHHII", 16 + len(body), family, NLM_F_REQUEST | flags, self.seq, 0) + body)
        messages = []
        while True:
            data = self.sock.recv(1 << 20)
            while len(data) >= 16:
                length, kind, _, seq, _ = struct.unpack_from("=IHHII", data)
                if seq == self.seq:
                    if kind == NLMSG_DONE:
                        return messages
                    if kind == NLMSG_ERROR:
                        error = struct.unpack_from("=i", data, 16)[0]
                        return messages if error == 0 else []
                    messages.append(data[20:length])
                data = data[(length + 3) & ~3:]

    def has_dest(self, vip, port, address):
        """Whether the TCP virtual server vip:port has the real server address (any port)."""
        self.looks += 1
        self.seq += 1
        request = self.requests.get((vip, port))
        if request is None:
            service = (attr(IPVS_SVC_ATTR_AF, struct.pack("=H", socket.AF_INET))
                       + attr(IPVS_SVC_ATTR_PROTOCOL, struct.pack("=H", socket.IPPROTO_TCP))
                       + attr(IPVS_SVC_ATTR_ADDR, socket.inet_aton(vip) + b"\0" * 12)
                       + attr(IPVS_SVC_ATTR_PORT, struct.pack("!H", port)))
            body = struct.pack("=BBH", IPVS_CMD_GET_DEST, 1, 0) + attr(IPVS_CMD_ATTR_SERVICE | NLA_F_NESTED, service)
            request = self.requests[(vip, port)] = bytearray(
                struct.pack("=IHHII", 16 + len(body), self.family, NLM_F_REQUEST | NLM_F_DUMP, 0, 0) + body)
        struct.pack_into("=I", request, 8, self.seq)
        self.sock.send(request)
        # The real server's address attribute as the kernel writes it: 16 bytes, IPv4 in the first 4.
        wanted = struct.pack("=HH", 20, IPVS_DEST_ATTR_ADDR) + socket.inet_aton(address)
        found = False
        while True:
            data = self.sock.recv(1 << 16)
            # A dump's messages fill a datagram; NLMSG_DONE (or an error) ends it.
            offset = 0
            while offset + 16 <= len(data):
                length, kind, _, seq, _ = struct.unpack_from("=IHHII", data, offset)
                if seq == self.seq:
                    if kind == NLMSG_DONE or kind == NLMSG_ERROR:
                        return found
                    found = found or data.find(wanted, offset + 20, offset + length) >= 0
                offset += (length + 3) & ~3

    def wait_for(self, vip, port, address, start, limit=60):
        """Looks until the kernel has address; returns the seconds since start, or None after limit.

        While it looks, this process runs at idle priority: the guest has one CPU, and a looker at
        normal priority would take half of it from the agent it times. It then sees the change at
        its first look once the agent (and the API server) leave the CPU."""
        if IDLE_WHILE_POLLING:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        try:
            while not self.has_dest(vip, port, address):
                if time.monotonic() - start > limit:
                    return None
                time.sleep(POLL_SLEEP)
            return time.monotonic() - start
        finally:
            if IDLE_WHILE_POLLING:
                os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


class Poller:
    """Times changes: each from a start the caller takes to the kernel holding the new real server."""

    def __init__(self):
        self.ipvs = IPVS()
        self.latencies = []
        self.polling = 0.0
        self.looks = 0

    def time_change(self, vip, port, address, start):
        before = self.ipvs.looks
        seconds = self.ipvs.wait_for(vip, port, address, start)
        if seconds is None:
            return None
        self.looks += self.ipvs.looks - before
        self.polling += seconds
        self.latencies.append(seconds * 1000)
        return seconds

    def period_ms(self):
        return self.polling * 1000 / max(1, self.looks)

    def summary(self):
        values = self.latencies
        return (f"p50 {rank(values, 50):.2f} ms   p99 {rank(values, 99):.2f} ms   max {max(values):.2f} ms"
                f"   (a look at the kernel every {self.period_ms():.2f} ms on average, at idle priority)")


# --- Objects ------------------------------------------------------------------------------------

def vip(s):
    return f"10.{96 + s // 62500}.{s // 250 % 250}.{s % 250 + 1}"


def endpoint_addresses(s, count):
    return [f"10.{200 + r // 250}.{r % 250}.{s % 250 + 1}" for r in range(count)]


def extra_address(k):
    """The endpoint change k adds: a range no Service's own endpoints use."""
    return f"10.250.{k // 250 % 250}.{k % 250 + 1}"


def service(s):
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": f"svc-{s}", "namespace": "bench"},
            "spec": {"type": "ClusterIP", "clusterIP": vip(s), "clusterIPs": [vip(s)], "ipFamilies": ["IPv4"],
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}}


def endpoint_slice(s, addresses):
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"svc-{s}-abc", "namespace": "bench",
                         "labels": {"kubernetes.io/service-name": f"svc-{s}"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [a], "conditions": {"ready": True, "serving": True, "terminating": False},
                           "nodeName": NODE} for a in addresses],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}


def manifest_yaml(first, count, endpoints, extra=None):
    """Services first..first+count-1 and their EndpointSlices as kubectl prints them; extra is
    (service, address): one more endpoint for that Service."""
    out = []
    for s in range(first, first + count):
        out.append(f"""---
apiVersion: v1
kind: Service
metadata: {{name: svc-{s}, namespace: bench}}
spec:
  type: ClusterIP
  clusterIP: {vip(s)}
  ports:
  - {{name: http, port: 80, targetPort: 8080, protocol: TCP}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: svc-{s}-abc
  namespace: bench
  labels: {{kubernetes.io/service-name: svc-{s}}}
addressType: IPv4
ports: [{{name: http, port: 8080, protocol: TCP}}]
endpoints:
""")
        addresses = endpoint_addresses(s, endpoints)
        if extra and extra[0] == s:
            addresses.append(extra[1])
        for a in addresses:
            out.append(f"- {{addresses: [{a}], conditions: {{ready: true}}, nodeName: {NODE}}}\n")
    return "".join(out)


# --- Processes ----------------------------------------------------------------------------------

class Agent:
    """kipvs run, its log in a file read as it grows."""

    SYNCED = re.compile(r"\] synced$")
    QUIET = re.compile(r"\] synced, nothing changed$")
    SECONDS = re.compile(r"\bseconds=([0-9.eE+-]+) seconds\b")

    def __init__(self, directory, name, arguments):
        self.log_path = os.path.join(directory, f"{name}.log")
        self.log = open(self.log_path, "w")
        self.started = time.monotonic()
        self.process = subprocess.Popen([KIPVS, "run", "--hostname-override", NODE] + arguments,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log)
        self.reader = open(self.log_path)
        self.pending = ""
        self.seen = []

    def lines(self):
        """The log lines written since the last call; each is kept with when it was first seen."""
        self.pending += self.reader.read()
        *complete, self.pending = self.pending.split("\n")
        now = time.monotonic()
        self.seen += [(now, entry) for entry in complete]
        return complete

    def wait_for(self, pattern, limit, every=0.005):
        """The first new log line matching pattern, or an exception naming what is missing."""
        deadline = time.monotonic() + limit
        while True:
            for line in self.lines():
                if pattern(line):
                    return line
            if self.process.poll() is not None:
                hint = ""
                if self.process.returncode == -signal.SIGKILL:
                    # UML maps a guest process's pages one host mapping per run of pages.
                    hint = (" (under UML, a guest process that needs more host mappings than the host's"
                            " vm.max_map_count is killed: a few hundred MiB at the default 65530)")
                raise RuntimeError(f"kipvs exited ({self.process.returncode}){hint}; its log ends:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"no such log line after {limit} s; the log ends:\n{self.tail()}")
            time.sleep(every)

    def wait_for_first_sync(self, limit=900):
        self.wait_for(lambda line: self.SYNCED.search(line) or self.QUIET.search(line), limit)
        return time.monotonic() - self.started

    def first_sync_steps(self):
        """Seconds from start until both lists were read, as seen in the log while waiting for the
        first sync (to the 5 ms the log is looked at), and the first sync's own seconds as it logs
        them; None where not logged."""
        listed = [when for when, entry in self.seen if entry.endswith("] listed")]
        synced = None
        for _, entry in self.seen:
            if self.SYNCED.search(entry):
                found = self.SECONDS.search(entry)
                synced = float(found.group(1)) if found else None
                break
        return (max(listed) - self.started if len(listed) >= 2 else None), synced

    def cpu_seconds(self):
        with open(f"/proc/{self.process.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # utime and stime, fields 14 and 15 of proc(5); the first two fields are cut off above.
        return (int(fields[11]) + int(fields[12])) / HZ

    def status(self, key):
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        raise RuntimeError(f"no {key} in /proc/{self.process.pid}/status")

    def vmhwm_mib(self):
        return self.status("VmHWM") / 1024

    def tail(self, lines=20):
        with open(self.log_path) as f:
            return "".join(f.readlines()[-lines:])

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        self.reader.close()


class APIServer:
    """kube-api-test-server and its admin interface."""

    def __init__(self, directory):
        self.kubeconfig = os.path.join(directory, "kubeconfig")
        self.log = open(os.path.join(directory, "server.log"), "w")
        self.process = subprocess.Popen([API_SERVER, "--listen", f"127.0.0.1:{API_PORT}",
                                         "--admin-listen", f"127.0.0.1:{ADMIN_PORT}", "--kubeconfig-out", self.kubeconfig],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + 60
        while not os.path.exists(self.kubeconfig) or os.path.getsize(self.kubeconfig) == 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the test API server did not start")
            time.sleep(0.05)
        self.admin = http.client.HTTPConnection("127.0.0.1", ADMIN_PORT, timeout=600)

    def apply(self, objects):
        body = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}).encode()
        self.admin.request("POST", "/admin/apply", body, {"Content-Type": "application/json"})
        response = self.admin.getresponse()
        answer = response.read()
        if response.status != 200:
            raise RuntimeError(f"the admin API answered {response.status}: {answer[:200]!r}")

    def compact(self):
        """Forgets the history of the writes so far, as a real server's compaction does: this
        server rebuilds each list page from its history, which would otherwise grow with every
        object applied."""
        self.admin.request("POST", "/admin/fault?type=gone-event", b"")
        response = self.admin.getresponse()
        answer = response.read()
        if response.status != 200:
            raise RuntimeError(f"the admin API answered {response.status} to a compaction: {answer[:200]!r}")

    def paged_list_seconds(self, path, limit=500):
        """How long this server takes to answer a whole list in pages of limit, as the agent asks."""
        api = http.client.HTTPConnection("127.0.0.1", API_PORT, timeout=600)
        start = time.monotonic()
        token = ""
        while True:
            api.request("GET", f"{path}?limit={limit}" + (f"&continue={urllib.parse.quote(token)}" if token else ""))
            response = api.getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"list {path}: {response.status} {body[:200]!r}")
            token = json.loads(body).get("metadata", {}).get("continue", "")
            if not token:
                break
        api.close()
        return time.monotonic() - start

    def stop(self):
        self.admin.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def ipvsadm_save_seconds(runs=3):
    """The median time of `ipvsadm -Sn`, the C tool's read of the whole table."""
    times = []
    for _ in range(runs):
        start = time.monotonic()
        subprocess.run(["ipvsadm", "-Sn"], stdout=subprocess.DEVNULL, check=True)
        times.append(time.monotonic() - start)
    return statistics.median(times)


def virtual_server_count():
    out = subprocess.run(["ipvsadm", "-Sn"], capture_output=True, text=True, check=True).stdout
    return sum(1 for line in out.splitlines() if line.startswith("-A"))


# --- The API source -----------------------------------------------------------------------------

API_ENDPOINTS = 3
LIST_PATHS = ("/api/v1/services", "/apis/discovery.k8s.io/v1/endpointslices")


def api(services):
    changes = int(os.environ.get("KIPVS_API_CHANGES", "100"))
    churn_seconds = int(os.environ.get("KIPVS_CHURN_SECONDS", "600"))
    churn_size = int(os.environ.get("KIPVS_CHURN_SERVICES", "10000"))
    resyncs = int(os.environ.get("KIPVS_RESYNCS", "3"))
    resync_period = int(os.environ.get("KIPVS_RESYNC_PERIOD", "10"))
    key = f"api.{services}"
    print(f"{services} Services x {API_ENDPOINTS} endpoints, API source:", flush=True)
    with tempfile.TemporaryDirectory(prefix="syncbench.", dir=SCRATCH) as directory:
        server = APIServer(directory)
        agent = None
        try:
            start = time.monotonic()
            chunk = 5000
            for first in range(0, services, chunk):
                objects = []
                for s in range(first, min(services, first + chunk)):
                    objects += [service(s), endpoint_slice(s, endpoint_addresses(s, API_ENDPOINTS))]
                server.apply(objects)
            line("objects applied to the test API server", f"{time.monotonic() - start:.1f} s")
            server.compact()
            lists = sum(server.paged_list_seconds(path) for path in LIST_PATHS)
            figure(f"{key}.server_list_s", f"{lists:.3f}")
            line("the test API server alone: both lists in pages of 500", f"{lists:.2f} s")

            # Debug level: the lists and the sync log what they took (one more line per change).
            agent = Agent(directory, "agent", ["--source", "kubernetes", "--kubeconfig", server.kubeconfig,
                                               "--ipvs-min-sync-period", "0s", "--ipvs-sync-period", "1h",
                                               "--log-level", "debug"])
            first_sync = agent.wait_for_first_sync()
            figure(f"{key}.first_sync_s", f"{first_sync:.3f}")
            line("agent start to its first sync (list, watch, write)", f"{first_sync:.2f} s")
            listed, synced = agent.first_sync_steps()
            if synced is not None:
                figure(f"{key}.first_sync_write_s", f"{synced:.3f}")
                line("  of which the sync itself (kernel writes; agent's log)", f"{synced:.2f} s")
            if listed is not None:
                figure(f"{key}.first_sync_listed_s", f"{listed:.3f}")
                line("  both lists read and decoded after (agent's log)", f"{listed:.2f} s")
            line("virtual servers in the kernel", virtual_server_count())

            poller = Poller()
            pause = random.Random(1)
            for k in range(changes):
                s = (k * 7919 + 1) % services
                address = extra_address(k)
                if poller.ipvs.has_dest(vip(s), 80, address):
                    raise RuntimeError(f"change {k}: the kernel has {address} before the change")
                server.apply([endpoint_slice(s, endpoint_addresses(s, API_ENDPOINTS) + [address])])
                if poller.time_change(vip(s), 80, address, time.monotonic()) is None:
                    raise RuntimeError(f"change {k}: not in the kernel after 60 s; the agent's log ends:\n{agent.tail()}")
                # Each change on its own, not behind the previous one's sync; the pause varies.
                time.sleep(pause.uniform(0.2, 0.5))
            print(f"  {changes} single-EndpointSlice changes, API accepted -> kernel has it:")
            print(f"    {poller.summary()}", flush=True)
            figure(f"{key}.p50_ms", f"{rank(poller.latencies, 50):.3f}")
            figure(f"{key}.p99_ms", f"{rank(poller.latencies, 99):.3f}")
            figure(f"{key}.poll_ms", f"{poller.period_ms():.3f}")

            if services == churn_size and churn_seconds > 0:
                churn(server, agent, poller, services, churn_seconds)

            hwm = agent.vmhwm_mib()
            figure(f"{key}.vmhwm_mib", f"{hwm:.1f}")
            line("agent peak RSS (VmHWM) after the changes", f"{hwm:.1f} MiB")
            agent.stop()

            # The same table, a new agent that resyncs every few seconds; debug level logs the quiet syncs.
            agent = Agent(directory, "resync", ["--source", "kubernetes", "--kubeconfig", server.kubeconfig,
                                                "--ipvs-min-sync-period", "0s", "--ipvs-sync-period", f"{resync_period}s",
                                                "--log-level", "debug"])
            restart = agent.wait_for_first_sync()
            line("agent restart on the full table to its first sync", f"{restart:.2f} s")
            times = []
            for _ in range(resyncs):
                found = agent.wait_for(lambda l: Agent.QUIET.search(l) and "resync=true" in l, resync_period * 3 + 120, every=0.05)
                times.append(float(Agent.SECONDS.search(found).group(1)))
            agent.stop()
            agent = None
            floor = ipvsadm_save_seconds()
            resync = statistics.median(times)
            figure(f"{key}.resync_s", f"{resync:.4f}")
            figure(f"{key}.ipvsadm_save_s", f"{floor:.4f}")
            line(f"periodic resync, nothing changed (median of {resyncs})", f"{resync:.3f} s")
            line("ipvsadm -Sn of the same table (median of 3)", f"{floor:.3f} s")
        finally:
            if agent:
                agent.stop()
            server.stop()


def churn(server, agent, poller, services, seconds, rate=10):
    """rate EndpointSlice changes a second for seconds; the agent's CPU time over them.

    Each change goes at a random moment of its own 1/rate slot: UML charges CPU time a whole tick
    at a time to whatever runs at the tick, so changes sent on a fixed grid, in step with the
    ticks, would be charged several times what they cost, or nothing."""
    print(f"  churn: {rate} EndpointSlice changes a second for {seconds} s ...", flush=True)
    pick = random.Random(2)
    syncs_before = sum(1 for l in open(agent.log_path) if Agent.SYNCED.search(l))
    cpu_before = agent.cpu_seconds()
    start = time.monotonic()
    sent, k, last = 0, 100000, None
    while time.monotonic() - start < seconds:
        due = start + (sent + pick.random()) / rate
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        s = pick.randrange(services)
        k += 1
        last = (s, extra_address(k))
        server.apply([endpoint_slice(s, endpoint_addresses(s, API_ENDPOINTS) + [last[1]])])
        sent += 1
    elapsed = time.monotonic() - start
    landed = poller.ipvs.wait_for(vip(last[0]), 80, last[1], time.monotonic(), limit=60) is not None
    cpu = agent.cpu_seconds() - cpu_before
    syncs = sum(1 for l in open(agent.log_path) if Agent.SYNCED.search(l)) - syncs_before
    figure("churn.services", services)
    figure("churn.seconds", f"{elapsed:.0f}")
    figure("churn.changes", sent)
    figure("churn.cpu_s", f"{cpu:.2f}")
    line(f"churn: {sent} changes in {elapsed:.0f} s, {syncs} syncs, last change in the kernel",
         "yes" if landed else "NO")
    line("churn: agent CPU time (utime+stime)", f"{cpu:.2f} s = {cpu * 100 / elapsed:.2f} % of one core")


def line(label, value):
    print(f"  {label:<60} {value}", flush=True)


# --- The file source on a directory -------------------------------------------------------------

DIR_ENDPOINTS = 10


def manifest_dir(services, files):
    changes = int(os.environ.get("KIPVS_DIR_CHANGES", "20"))
    per_file = services // files
    key = f"dir.{services}"
    print(f"{services} Services x {DIR_ENDPOINTS} endpoints in {files} files of {per_file}, file source on the directory:", flush=True)
    with tempfile.TemporaryDirectory(prefix="syncbench.", dir=SCRATCH) as directory:
        manifests = os.path.join(directory, "manifests")
        os.mkdir(manifests)
        name = lambda f: os.path.join(manifests, f"services-{f:03}.yaml")
        for f in range(files):
            with open(name(f), "w") as out:
                out.write(manifest_yaml(f * per_file, per_file, DIR_ENDPOINTS))
        agent = Agent(directory, "agent", ["--source", f"file:{manifests}",
                                           "--ipvs-min-sync-period", "0s", "--ipvs-sync-period", "1h"])
        try:
            first_sync = agent.wait_for_first_sync()
            figure(f"{key}.first_sync_s", f"{first_sync:.3f}")
            line("agent start to its first sync", f"{first_sync:.2f} s")
            poller = Poller()
            pause = random.Random(3)
            for k in range(changes):
                f = (k * 37 + 3) % files
                s = f * per_file + (k * 13) % per_file
                address = extra_address(k)
                # A new version beside the old one, under a name the directory's reader skips.
                scratch = os.path.join(manifests, f".services-{f:03}.yaml.new")
                with open(scratch, "w") as out:
                    out.write(manifest_yaml(f * per_file, per_file, DIR_ENDPOINTS, extra=(s, address)))
                start = time.monotonic()
                os.rename(scratch, name(f))
                if poller.time_change(vip(s), 80, address, start) is None:
                    raise RuntimeError(f"change {k}: not in the kernel after 60 s; the agent's log ends:\n{agent.tail()}")
                time.sleep(pause.uniform(0.3, 0.6))
            print(f"  {changes} one-endpoint changes, file renamed into place -> kernel has it:")
            print(f"    {poller.summary()}", flush=True)
            figure(f"{key}.p50_ms", f"{rank(poller.latencies, 50):.3f}")
            figure(f"{key}.p99_ms", f"{rank(poller.latencies, 99):.3f}")
            figure(f"{key}.poll_ms", f"{poller.period_ms():.3f}")
            hwm = agent.vmhwm_mib()
            figure(f"{key}.vmhwm_mib", f"{hwm:.1f}")
            line("agent peak RSS (VmHWM)", f"{hwm:.1f} MiB")
        finally:
            agent.stop()


def rename_wait(source, target, address_vip, port, address):
    poller = Poller()
    start = time.monotonic()
    os.rename(source, target)
    seconds = poller.time_change(address_vip, int(port), address, start)
    if seconds is None:
        sys.exit(f"{address} not in {address_vip}:{port} after 60 s")
    print(f"{seconds:.4f}")


# --- The table ----------------------------------------------------------------------------------

def table(path):
    figures = {}
    if os.path.exists(path):
        with open(path) as f:
            for entry in f:
                k, _, v = entry.strip().partition(" ")
                figures[k] = float(v)

    def ms(value):
        return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"

    def s(value):
        return f"{value:.2f} s"

    def get(k, show):
        return show(figures[k]) if k in figures else "—"

    def size(n):
        return f"{n // 1000}k" if n % 1000 == 0 else str(n)

    rows = []
    api_sizes = sorted({int(k.split(".")[1]) for k in figures if k.startswith("api.")})
    for n in api_sizes:
        known = n == 10000
        rows.append((f"API change → kernel p50, {size(n)}", "390 ms" if known else "—", get(f"api.{n}.p50_ms", ms), "≤ 3 ms"))
        rows.append((f"API change → kernel p99, {size(n)}", "690 ms" if known else "—", get(f"api.{n}.p99_ms", ms), "≤ 10 ms"))
    for n in api_sizes:
        k = f"api.{n}"
        now = get(f"{k}.first_sync_s", s)
        steps = []
        if f"{k}.first_sync_listed_s" in figures:
            steps.append(f"lists in {figures[f'{k}.first_sync_listed_s']:.2f} s"
                         + (f" (the server alone {figures[f'{k}.server_list_s']:.2f} s)" if f"{k}.server_list_s" in figures else ""))
        if f"{k}.first_sync_write_s" in figures:
            steps.append(f"sync {figures[f'{k}.first_sync_write_s']:.2f} s")
        if steps and now != "—":
            now += ": " + ", ".join(steps)
        rows.append((f"first sync from an empty kernel, API, {size(n)}", "8.1 s" if n == 10000 else "—",
                     now, "≤ 1.0 s" if n == 10000 else "report"))
    for n in api_sizes:
        k = f"api.{n}"
        now = "—"
        if f"{k}.resync_s" in figures and f"{k}.ipvsadm_save_s" in figures:
            resync, floor = figures[f"{k}.resync_s"], figures[f"{k}.ipvsadm_save_s"]
            now = f"{resync:.3f} s = {resync / floor:.2f} × ipvsadm -Sn ({floor:.3f} s)"
        rows.append((f"periodic resync, nothing changed, {size(n)}", "—", now, "≤ 1.2 × ipvsadm -Sn"))
    for n in api_sizes:
        rows.append((f"agent peak RSS (VmHWM), API, {size(n)}", "92 MiB" if n == 10000 else "—",
                     get(f"api.{n}.vmhwm_mib", lambda v: f"{v:.1f} MiB"), "≤ 48 MiB" if n == 10000 else "report"))
    if "churn.cpu_s" in figures:
        elapsed = figures["churn.seconds"]
        cpu = figures["churn.cpu_s"]
        rows.append((f"agent CPU, 10 API changes/s for {elapsed:.0f} s, {size(int(figures['churn.services']))}", "—",
                     f"{cpu:.1f} s = {cpu * 100 / elapsed:.2f} % of one core", "report"))
    for n in sorted({int(k.split(".")[1]) for k in figures if k.startswith("dir.")}):
        previous = "6.0 s (one 9.7 MB file)" if n == 10000 else "—"
        for p in (50, 99):
            rows.append((f"one endpoint change, {size(n)}-Service manifest directory → kernel p{p}", previous,
                         get(f"dir.{n}.p{p}_ms", ms), "≤ 50 ms"))
    if "file.change_s" in figures:
        n = int(figures.get("file.services", 0))
        rows.append((f"one endpoint change in a {figures.get('file.bytes', 0) / 1e6:.1f} MB manifest file ({size(n)}) → kernel",
                     "6.0 s" if n == 10000 else "—", get("file.change_s", lambda v: ms(v * 1000)), "—"))
    polls = [figures[k] for k in figures if k.endswith(".poll_ms")]

    header = ("figure", "previous", "now", "aim")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
    if polls:
        print(f"Changes timed by looking at the kernel every {min(polls):.2f}–{max(polls):.2f} ms on average, at idle"
              " priority (the looker waits while the agent works). Figures from one pinned UML guest: comparable"
              " with each other and with the previous ones, not with real hardware.")


def main():
    command, arguments = sys.argv[1], sys.argv[2:]
    if command == "api":
        api(int(arguments[0]))
    elif command == "manifest-dir":
        manifest_dir(int(arguments[0]), int(arguments[1]))
    elif command == "rename-wait":
        rename_wait(*arguments)
    elif command == "table":
        table(arguments[0])
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as error:
        sys.exit(f"syncbench: {error}")
