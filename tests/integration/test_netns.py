"""A cluster spread over network namespaces, with links that go down.

The controller, three workers and the test's HTTP client each live in a
network namespace of their own with an address on 10.77.0.0/24; veth pairs
join them to a bridge in a hub namespace (or, without bridge support, to a
router namespace, one /24 per node). The data directory is one temporary
directory, which every namespace sees because only the network is
separate. Processes start with `ip netns exec` and are stopped by PID.

Needs root and iproute2; skipped otherwise. Namespace names carry the pid
and a random tag, so parallel runs never meet, and every namespace is
deleted when its test ends, whatever happened (deleting a namespace
deletes its veth ends and their peers).
"""
import ctypes
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import unittest

from harness import (CONTROLLER, WORKER, Cluster, ClusterTest, Response,
                     wait_for)

TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools")
sys.path.insert(0, TOOLS)
import faultkit  # noqa: E402

DEFINITIONS = """
tasks:
  act:
    input:
      TOOLS: {source: environment}
      MARKERS: {source: environment}
      name: {source: parameter, default: one}
      item: {source: parameter, default: "0"}
      mode: {source: parameter, default: ok}
    exec_command: /usr/bin/python3
    exec_args: ["{TOOLS}/act.py", "{MARKERS}", "{name}-{item}", "{mode}"]
  spawn-modes:
    input:
      TOOLS: {source: environment}
      modes: {source: parameter}
    exec_command: /usr/bin/python3
    exec_args: ["{TOOLS}/spawn.py", "--modes", "{modes}"]
jobs:
  modes:
    input:
      modes: {source: parameter}
      name: {source: parameter, default: one}
    stages:
      - {name: spread, task_class: act, spawn_task: spawn-modes, job_failed_on_error: false}
"""

WAIT = 60
HTTP_PORT = 8080
ZMQ_PORT = 5555
WORKERS = ("w1", "w2", "w3")

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "setns: " + os.strerror(err))


def socket_in(namespace):
    """A TCP socket that belongs to network namespace `namespace`: this
    thread enters it only for the socket() call and then comes back."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open("/run/netns/" + namespace, os.O_RDONLY)
        try:
            _setns(target)
            try:
                return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            finally:
                _setns(own)
        finally:
            os.close(target)
    finally:
        os.close(own)


class NsHTTPConnection(http.client.HTTPConnection):
    def __init__(self, namespace, host, port, timeout):
        super().__init__(host, port, timeout=timeout)
        self.namespace = namespace

    def connect(self):
        sock = socket_in(self.namespace)
        try:
            sock.settimeout(self.timeout)
            sock.connect((self.host, self.port))
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def lists_option(binary, option):
    """True when `binary --help` lists `option`."""
    try:
        out = subprocess.run([binary, "--help"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=30).stdout
    except OSError:
        return False
    return option.encode() in out


def plaintext(binary):
    """The flag that lets `binary` speak plain ZeroMQ beyond loopback, for
    the versions that ask for it: these namespaces are a trusted network."""
    return ["--plaintext"] if lists_option(binary, "--plaintext") else []


def missing_prerequisite():
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if not shutil.which("ip"):
        return "needs iproute2 ('ip' is not on PATH)"
    return None


class Network:
    """The namespaces of one test and the links between them."""

    def __init__(self, test, roles):
        self.test = test
        self.tag = "%d-%s" % (os.getpid(), os.urandom(3).hex())
        self.addr = {}
        self.gateway = {}
        hub = self.add_namespace("hub")
        try:
            self.ip("-n", hub, "link", "add", "br0", "type", "bridge")
            self.bridge = True
        except AssertionError:
            self.bridge = False
        if self.bridge:
            self.ip("-n", hub, "link", "set", "br0", "up")
        else:
            self.run("ip", "netns", "exec", hub, "sysctl", "-qw",
                     "net.ipv4.ip_forward=1")
        for i, role in enumerate(roles, 1):
            ns = self.add_namespace(role)
            port = "p%d" % i
            self.ip("-n", hub, "link", "add", port, "type", "veth", "peer",
                    "name", "eth0", "netns", ns)
            if self.bridge:
                self.ip("-n", hub, "link", "set", port, "master", "br0")
                self.addr[role] = "10.77.0.%d" % (10 + i)
            else:
                self.ip("-n", hub, "addr", "add", "10.77.%d.1/24" % i,
                        "dev", port)
                self.addr[role] = "10.77.%d.2" % i
                self.gateway[role] = "10.77.%d.1" % i
            self.ip("-n", hub, "link", "set", port, "up")
            self.ip("-n", ns, "addr", "add", self.addr[role] + "/24",
                    "dev", "eth0")
            self.link_up(role)

    def name(self, role):
        return "shoal-%s-%s" % (self.tag, role)

    def run(self, *argv):
        proc = subprocess.run(argv, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=30)
        if proc.returncode != 0:
            raise AssertionError("%s failed (%d): %s" % (
                " ".join(argv), proc.returncode,
                proc.stdout.decode(errors="replace").strip()))
        return proc.stdout.decode(errors="replace")

    def ip(self, *args):
        return self.run("ip", *args)

    def add_namespace(self, role):
        ns = self.name(role)
        self.ip("netns", "add", ns)
        self.test.addCleanup(self._delete_namespace, ns)
        self.ip("-n", ns, "link", "set", "lo", "up")
        return ns

    def _delete_namespace(self, ns):
        subprocess.run(["ip", "netns", "delete", ns], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30)

    def link_down(self, role):
        self.ip("-n", self.name(role), "link", "set", "eth0", "down")

    def link_up(self, role):
        ns = self.name(role)
        self.ip("-n", ns, "link", "set", "eth0", "up")
        if role in self.gateway:
            # Taking a link down drops the routes through it.
            self.ip("-n", ns, "route", "replace", "default", "via",
                    self.gateway[role])


class NetCluster(Cluster):
    """harness.Cluster with each process in its own namespace."""

    def __init__(self, definitions, net):
        super().__init__(definitions)
        self.net = net
        self.ctl_addr = net.addr["ctl"]
        self.http_port = HTTP_PORT
        self.zmq_port = ZMQ_PORT

    def start_controller(self, extra=()):
        self.controller = self._spawn("controller", [
            "ip", "netns", "exec", self.net.name("ctl"), CONTROLLER,
            "--definitions", self.defs_path, "--data-dir", self.data_dir,
            "--http", "%s:%d" % (self.ctl_addr, HTTP_PORT),
            "--bind", "tcp://%s:%d" % (self.ctl_addr, ZMQ_PORT),
            "--log-level", "debug", *plaintext(CONTROLLER), *extra])
        wait_for(self._ready, timeout=WAIT, what="controller /readyz")
        return self.controller

    def start_worker(self, name, slots=2, env=None, wait=True, extra=()):
        proc = self._spawn(name, [
            "ip", "netns", "exec", self.net.name(name), WORKER,
            "--connect", "tcp://%s:%d" % (self.ctl_addr, ZMQ_PORT),
            "--data-dir", self.data_dir, "--slots", str(slots),
            "--name", name, "--log-level", "debug", *plaintext(WORKER),
            *extra], env=env)
        self.workers[name] = proc
        if wait:
            wait_for(lambda: name in self.worker_names(), timeout=WAIT,
                     what="worker %s to join" % name)
        return proc

    def request(self, method, path, body=None, headers=None, raw=None):
        conn = NsHTTPConnection(self.net.name("cli"), self.ctl_addr,
                                HTTP_PORT, timeout=30)
        try:
            hdrs = dict(headers or {})
            data = raw
            if body is not None:
                data = json.dumps(body).encode()
                hdrs.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            return Response(resp.status, dict(resp.getheaders()),
                            resp.read().decode(errors="replace"))
        finally:
            conn.close()


@unittest.skipIf(missing_prerequisite(), missing_prerequisite())
class NetnsTest(ClusterTest, faultkit.SettledChecks):
    definitions = DEFINITIONS

    def setUp(self):
        # Cleanups run last in, first out: the processes stop before the
        # namespaces they live in are deleted.
        self.net = Network(self, ("ctl", "cli") + WORKERS)
        self.cluster = NetCluster(DEFINITIONS, self.net)
        self.addCleanup(self._close, self.cluster)
        self.markers = os.path.join(self.cluster.tmp, "markers")
        os.makedirs(self.markers)
        self.cluster.start_controller()

    def env(self, **extra):
        env = {"TOOLS": TOOLS, "MARKERS": self.markers}
        env.update(extra)
        return env

    def marker(self, name):
        return faultkit.read_marker(os.path.join(self.markers, name))

    def spawned(self, job_id):
        return {t["index"]: t for t in self.cluster.tasks(job_id)
                if t["kind"] == "task"}

    def start_workers(self, sleeps):
        for name in WORKERS:
            self.cluster.start_worker(name, slots=2,
                                      env=self.env(ACT_SLEEP=sleeps[name]))

    def submit_six_and_wait_for_them(self, name="one"):
        """Six slow tasks on six slots: two on each worker."""
        job = self.cluster.submit("modes", {"modes": ",".join(["slow"] * 6),
                                            "name": name})
        names = ["%s-%d" % (name, i) for i in range(6)]
        wait_for(lambda: all(self.marker(n) for n in names), timeout=WAIT,
                 what="six tasks to start")
        return job, names

    # ---- the tests -----------------------------------------------------
    def test_spawned_stage_spreads_over_workers_in_three_namespaces(self):
        c = self.cluster
        self.start_workers({"w1": "0.5", "w2": "0.5", "w3": "0.5"})
        job, names = self.submit_six_and_wait_for_them()
        done = c.wait_job(job["id"], timeout=WAIT)
        self.assertEqual(done["state"], "succeeded", done)
        per_worker = sorted(t["worker"] for t in self.spawned(job["id"]).values())
        self.assertEqual(per_worker, ["w1", "w1", "w2", "w2", "w3", "w3"])
        self.assertEqual({t["attempts"] for t in c.tasks(job["id"])}, {1})
        self.assert_settled([job["id"]], once=names)

    def test_tasks_of_a_worker_whose_link_goes_down_run_again_elsewhere(self):
        c = self.cluster
        # w3's tasks outlast the outage; the others finish fast, so their
        # slots are free for what comes back from w3.
        self.start_workers({"w1": "0.3", "w2": "0.3", "w3": "8"})
        job, names = self.submit_six_and_wait_for_them()
        on_w3 = [i for i, t in self.spawned(job["id"]).items()
                 if t["worker"] == "w3"]
        self.assertEqual(len(on_w3), 2)

        self.net.link_down("w3")
        done = c.wait_job(job["id"], timeout=WAIT)
        self.assertEqual(done["state"], "succeeded", done)
        tasks = self.spawned(job["id"])
        for i in on_w3:
            self.assertEqual(tasks[i]["attempts"], 2, tasks[i])
            self.assertIn(tasks[i]["worker"], ("w1", "w2"), tasks[i])
        for i in set(range(6)) - set(on_w3):
            self.assertEqual(tasks[i]["attempts"], 1, tasks[i])
        counts = done["stages"][0]["tasks"]
        self.assertEqual((counts["total"], counts["succeeded"]), (7, 7),
                         counts)
        self.assertNotIn("w3", c.worker_names())
        self.assert_settled(
            [job["id"]], done=names,
            once=["one-%d" % i for i in range(6) if i not in on_w3])

    def test_worker_rejoins_when_its_link_comes_back_and_nothing_is_lost(self):
        c = self.cluster
        self.start_workers({"w1": "0.3", "w2": "0.3", "w3": "8"})
        job, names = self.submit_six_and_wait_for_them()
        on_w3 = {t["id"]: i for i, t in self.spawned(job["id"]).items()
                 if t["worker"] == "w3"}
        self.assertEqual(len(on_w3), 2)
        w3_pids = {i: self.marker("one-%d" % i)[0][2] for i in on_w3.values()}

        self.net.link_down("w3")
        wait_for(lambda: "w3" not in c.worker_names(), timeout=WAIT,
                 what="the controller to drop w3")
        self.net.link_up("w3")
        wait_for(lambda: "w3" in c.worker_names(), timeout=WAIT,
                 what="w3 to rejoin")
        done = c.wait_job(job["id"], timeout=WAIT)
        self.assertEqual(done["state"], "succeeded", done)

        # w3's own attempts finish, and what it reports about them is not
        # applied: stale for the controller, or w3 is told to reconnect.
        wait_for(lambda: all(("done", pid) in [(e, p) for e, _, p in
                                               self.marker("one-%d" % i)]
                             for i, pid in w3_pids.items()),
                 timeout=WAIT, what="w3's first attempts to finish")

        def refused():
            log = faultkit.read_text(os.path.join(c.tmp, "controller.log"))
            if all("stale result for task %s/%d attempt 1" % (job["id"], t)
                   in log for t in on_w3):
                return True
            w3_log = faultkit.read_text(os.path.join(c.tmp, "w3.log"))
            return "controller does not know us" in w3_log
        wait_for(refused, timeout=WAIT, what="w3's late results to be refused")
        wait_for(lambda: all(w["busy"] == 0 for w in
                             c.get("/api/v1/workers").json()["workers"]),
                 timeout=WAIT, what="every slot to be free")

        tasks = self.spawned(job["id"])
        for i in on_w3.values():
            self.assertEqual(tasks[i]["attempts"], 2, tasks[i])
            self.assertIn(tasks[i]["worker"], ("w1", "w2"), tasks[i])
        counts = c.job(job["id"])["stages"][0]["tasks"]
        self.assertEqual((counts["total"], counts["succeeded"]), (7, 7),
                         counts)

        # w3 takes work again: six quick tasks fill all six slots at once.
        again = c.submit("modes", {"modes": ",".join(["ok"] * 6),
                                   "name": "again"})
        done = c.wait_job(again["id"], timeout=WAIT)
        self.assertEqual(done["state"], "succeeded", done)
        self.assertIn("w3", {t["worker"] for t in self.spawned(again["id"]).values()})
        self.assertEqual(sorted(c.worker_names()), list(WORKERS))
        self.assert_settled([job["id"], again["id"]], done=names,
                            once=["again-%d" % i for i in range(6)])


if __name__ == "__main__":
    unittest.main(verbosity=2)
