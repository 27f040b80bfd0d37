"""The Kubernetes topology of deploy/kubernetes, for real on one machine.

Each pod is a process in a network namespace of its own, with its own
address on a bridge (the pod network, see netns.py), its own host name
(a UTS namespace) and its own /etc/hosts, bind-mounted in a private mount
namespace, that resolves the Service name `shoal-controller` to the
controller pod's address. As in the base manifests:

- the controller (1 replica) serves HTTP on 0.0.0.0:8080 and ZeroMQ on
  tcp://*:5555 of its pod, with CURVE (--curve-secret, --curve-clients);
  its state directory is its own (the ReadWriteOnce claim);
- three worker pods connect to tcp://shoal-controller:5555 with CURVE,
  named after their pod (SHOAL_WORKER_NAME) with two slots each
  (SHOAL_SLOTS);
- one directory is the data volume every pod mounts (the ReadWriteMany
  claim), and the definitions are a file the test writes (the ConfigMap).

The test's own HTTP client lives in another namespace and reaches the
controller at its pod address. Every option is given by the environment
variables the manifests use.

A job has a spawned stage of ITEMS tasks; each writes a marker holding its
pod's host name into the job directory on the shared volume; a last stage
collects them into result.json. The first job must spread over all three
workers. In the second, one worker's link goes down while it runs tasks:
the controller marks it lost after missed heartbeats and its tasks run on
the other two. An item may then have run twice (the cut-off worker still
finishes its attempt): only the partitioned worker may have left the
extra marker, the API credits the re-run, the result is still exact, and
when the link comes back the late result is refused (fencing).

Needs root and iproute2; skipped otherwise. Namespaces, links, mounts and
processes go away when the test ends, whatever happened: processes are
stopped by PID, the mount namespaces die with them, the network
namespaces (and their veth pairs) are deleted.
"""
import ctypes
import json
import os
import re
import socket
import subprocess
import unittest

from harness import BUILD_DIR, CONTROLLER, WORKER, ClusterTest, wait_for
from netns import (HTTP_PORT, WAIT, ZMQ_PORT, NetCluster, Network,
                   missing_prerequisite)

KEYGEN = os.path.join(BUILD_DIR, "shoal-keygen")
ITEMS = 30
PODS = ("shoal-worker-7d9f-a1", "shoal-worker-7d9f-b2", "shoal-worker-7d9f-c3")
CONTROLLER_POD = "shoal-controller-5c8b-x0"
SERVICE = "shoal-controller"
WELCOMED = re.compile(r"welcomed by controller '[0-9a-f]+' \(heartbeat \d+ ms, "
                      r"(\d+) results to send\)")

# The task a pod runs; the test writes it next to the definitions (a
# ConfigMap would carry it in a cluster).
POD_TASK = r'''
import json, os, socket, sys, time

def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)

def main(mode, *args):
    job_dir = os.environ["SHOAL_JOB_DIR"]
    if mode == "spawn":
        with open("spawn.json", "w") as f:
            json.dump([{"item": str(i)} for i in range(int(args[0]))], f)
        return 0
    if mode == "work":
        item, seconds = args
        me = "%s.%d" % (socket.gethostname(), os.getpid())
        time.sleep(float(seconds))
        write(os.path.join(job_dir, "markers", item, me),
              json.dumps({"host": socket.gethostname(),
                          "task": os.environ["SHOAL_TASK_ID"]}))
        return 0
    if mode == "collect":
        count = int(args[0])
        found = {}
        for item in os.listdir(os.path.join(job_dir, "markers")):
            for name in os.listdir(os.path.join(job_dir, "markers", item)):
                if not name.endswith(".tmp"):
                    found.setdefault(item, []).append(name.rsplit(".", 1)[0])
        missing = [str(i) for i in range(count) if str(i) not in found]
        write(os.path.join(job_dir, "result.json"),
              json.dumps({"items": len(found), "missing": missing,
                          "sum": sum(int(i) for i in found)}))
        return 1 if missing else 0
    return 2

sys.exit(main(*sys.argv[1:]))
'''

DEFINITIONS = """
tasks:
  list-items:
    input:
      POD_TASK: {source: environment}
      count: {source: parameter}
    exec_command: /usr/bin/python3
    exec_args: ["{POD_TASK}", "spawn", "{count}"]
  work:
    input:
      POD_TASK: {source: environment}
      item: {source: parameter}
      seconds: {source: parameter}
    exec_command: /usr/bin/python3
    exec_args: ["{POD_TASK}", "work", "{item}", "{seconds}"]
  collect:
    input:
      POD_TASK: {source: environment}
      count: {source: parameter}
    exec_command: /usr/bin/python3
    exec_args: ["{POD_TASK}", "collect", "{count}"]
jobs:
  fan-out:
    input:
      count: {source: parameter}
      seconds: {source: parameter}
    stages:
      - {name: work, task_class: work, spawn_task: list-items}
      - {name: collect, task_class: collect}
"""

# ---- pods: a host name and an /etc/hosts of their own -----------------

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
_libc = ctypes.CDLL(None, use_errno=True)


def _check(result, what):
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, "%s: %s" % (what, os.strerror(err)))


def pod_setup(hostname, hosts_file):
    """A preexec function: the child gets its own UTS and mount namespaces,
    `hostname`, and `hosts_file` over /etc/hosts. Nothing outside the child
    changes, and it all ends with the child."""
    def setup():
        _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWUTS), "unshare")
        _check(_libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None),
               "mount --make-rprivate /")
        _check(_libc.mount(hosts_file.encode(), b"/etc/hosts", None, MS_BIND,
                           None), "bind-mount /etc/hosts")
        socket.sethostname(hostname)
    return setup


class PodCluster(NetCluster):
    """The controller and workers as pods of deploy/kubernetes/base."""

    def __init__(self, net):
        super().__init__(DEFINITIONS, net)
        self.config = os.path.join(self.tmp, "config")     # the ConfigMap
        self.keys = os.path.join(self.tmp, "keys")         # the Secrets
        self.clients = os.path.join(self.tmp, "curve-clients")
        self.state = os.path.join(self.tmp, "state")       # RWO claim
        for d in (self.config, self.keys, self.clients, self.state):
            os.makedirs(d)
        self.pod_task = os.path.join(self.config, "pod_task.py")
        with open(self.pod_task, "w") as f:
            f.write(POD_TASK)
        self.hosts = os.path.join(self.tmp, "hosts")
        with open(self.hosts, "w") as f:
            f.write("127.0.0.1\tlocalhost\n%s\t%s\n"
                    % (net.addr["ctl"], SERVICE))
        self.pods = {}

    def keygen(self, name):
        out = subprocess.run([KEYGEN, "--dir", self.keys, name],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             timeout=30)
        if out.returncode != 0:
            raise AssertionError("shoal-keygen %s: %s" % (name, out.stdout))
        return os.path.join(self.keys, name + ".key")

    def _spawn_pod(self, role, pod, argv, env):
        log_path = os.path.join(self.tmp, role + ".log")
        self.logs.append(log_path)
        full_env = dict(os.environ)
        full_env.update(env)
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", self.net.name(role)] + argv,
                stdout=log, stderr=subprocess.STDOUT, env=full_env,
                cwd=self.tmp, preexec_fn=pod_setup(pod, self.hosts))
        self.pods[role] = pod
        return proc

    def start_controller(self, extra=()):
        key = self.keygen("controller")
        self.controller = self._spawn_pod("ctl", CONTROLLER_POD, [
            CONTROLLER, *extra], {
                "SHOAL_DEFINITIONS": self.defs_path,
                "SHOAL_DATA_DIR": self.data_dir,
                "SHOAL_STATE_DIR": self.state,
                "SHOAL_HTTP": "0.0.0.0:%d" % HTTP_PORT,
                "SHOAL_BIND": "tcp://*:%d" % ZMQ_PORT,
                "SHOAL_CURVE_SECRET": key,
                "SHOAL_CURVE_CLIENTS": self.clients,
                "SHOAL_LOG_LEVEL": "debug"})
        wait_for(self._ready, timeout=WAIT, what="controller /readyz")
        return self.controller

    def start_worker(self, name, slots=2, env=None, wait=True, extra=()):
        key = self.keygen(name)
        # Admitting a worker: its public key into the clients directory.
        with open(key) as src, open(os.path.join(self.clients, name + ".key"),
                                    "w") as dst:
            dst.write(src.read())
        role = "w%d" % (len(self.workers) + 1)
        proc = self._spawn_pod(role, name, [
            WORKER, "--connect", "tcp://%s:%d" % (SERVICE, ZMQ_PORT),
            *extra], dict(env or {}, **{
                "SHOAL_DATA_DIR": self.data_dir,
                "SHOAL_WORKER_NAME": name,
                "SHOAL_SLOTS": str(slots),
                "SHOAL_CURVE_SECRET": key,
                "SHOAL_CURVE_SERVER": os.path.join(self.keys,
                                                   "controller.key"),
                "SHOAL_LOG_LEVEL": "debug",
                "POD_TASK": self.pod_task}))
        self.workers[name] = proc
        if wait:
            wait_for(lambda: name in self.worker_names(), timeout=WAIT,
                     what="worker %s to join" % name)
        return proc

    def role_of(self, pod):
        return next(r for r, p in self.pods.items() if p == pod)


def read_json(path):
    with open(path) as f:
        return json.load(f)


@unittest.skipIf(missing_prerequisite(), missing_prerequisite())
class TopologyTest(ClusterTest):

    def setUp(self):
        # Cleanups run last in, first out: the processes stop before the
        # namespaces they live in are deleted.
        self.net = Network(self, ("ctl", "cli", "w1", "w2", "w3"))
        self.cluster = PodCluster(self.net)
        self.addCleanup(self._close, self.cluster)
        self.cluster.start_controller()
        for pod in PODS:
            self.cluster.start_worker(pod, slots=2)

    def markers(self, job_id):
        """{item: [host, ...]} of the markers in the job directory."""
        top = os.path.join(self.cluster.job_dir(job_id), "markers")
        found = {}
        for item in os.listdir(top) if os.path.isdir(top) else ():
            for name in os.listdir(os.path.join(top, item)):
                if not name.endswith(".tmp"):
                    found.setdefault(int(item), []).append(
                        name.rsplit(".", 1)[0])
        return found

    def work_tasks(self, job_id):
        """{item: task} of the spawned stage."""
        return {t["index"]: t for t in self.cluster.tasks(job_id)
                if t["kind"] == "task" and t["stage"] == "work"}

    def assert_result(self, job_id):
        job = self.cluster.job(job_id)
        self.assertEqual(job["state"], "succeeded", job)
        work, collect = job["stages"]
        self.assertEqual((work["tasks"]["total"], work["tasks"]["succeeded"]),
                         (ITEMS + 1, ITEMS + 1), work)
        self.assertEqual(collect["state"], "succeeded", collect)
        result = read_json(os.path.join(self.cluster.job_dir(job_id),
                                        "result.json"))
        self.assertEqual(result, {"items": ITEMS, "missing": [],
                                  "sum": ITEMS * (ITEMS - 1) // 2})

    def test_a_spawned_stage_over_three_pods_survives_a_partition(self):
        c = self.cluster
        # Each worker is named after its pod and runs on its pod's host.
        workers = c.get("/api/v1/workers").json()["workers"]
        self.assertEqual(sorted((w["id"], w["host"]) for w in workers),
                         [(pod, pod) for pod in sorted(PODS)])

        # ---- one job over the three pods
        job = c.submit("fan-out", {"count": str(ITEMS), "seconds": "0.2"})
        done = c.wait_job(job["id"], timeout=WAIT)
        self.assertEqual(done["state"], "succeeded", done)
        self.assert_result(job["id"])
        markers = self.markers(job["id"])
        self.assertEqual(sorted(markers), list(range(ITEMS)))
        tasks = self.work_tasks(job["id"])
        for item, hosts in markers.items():
            # Exactly once, on the pod the controller says ran it.
            self.assertEqual(hosts, [tasks[item]["worker"]], item)
            self.assertEqual(tasks[item]["attempts"], 1, tasks[item])
        self.assertEqual({h for hosts in markers.values() for h in hosts},
                         set(PODS), "every worker pod ran tasks")

        # ---- a second job; one pod's link goes down while it runs tasks
        cut = PODS[2]
        job = c.submit("fan-out", {"count": str(ITEMS), "seconds": "2"})

        def running_on_cut():
            return [i for i, t in self.work_tasks(job["id"]).items()
                    if t["state"] == "running" and t["worker"] == cut]
        wait_for(running_on_cut, timeout=WAIT,
                 what="a task to run on %s" % cut)
        self.net.link_down(c.role_of(cut))
        wait_for(lambda: cut not in c.worker_names(), timeout=WAIT,
                 what="the controller to mark %s lost" % cut)
        done = c.wait_job(job["id"], timeout=WAIT * 2)
        self.assertEqual(done["state"], "succeeded", done)
        self.assert_result(job["id"])

        tasks = self.work_tasks(job["id"])
        requeued = [i for i, t in tasks.items() if t["attempts"] > 1]
        self.assertTrue(requeued, "no task of %s was re-queued" % cut)
        for item in requeued:
            # Running or queued on the cut-off pod, then run elsewhere.
            self.assertEqual(tasks[item]["attempts"], 2, tasks[item])
            self.assertIn(tasks[item]["worker"], PODS[:2], tasks[item])

        # The cut-off pod still runs what it had, running or queued (the
        # volume is not cut off): each re-queued item ends up with a marker
        # from it too. Then each item has exactly one marker from the pod
        # the controller credits, plus the cut-off pod's for a re-queued one.
        wait_for(lambda: all(cut in self.markers(job["id"]).get(i, [])
                             for i in requeued), timeout=WAIT,
                 what="%s's cut-off attempts to end" % cut)
        markers = self.markers(job["id"])
        self.assertEqual(sorted(markers), list(range(ITEMS)))
        ran_twice = []
        for item, hosts in markers.items():
            credited = tasks[item]["worker"]
            self.assertEqual(hosts.count(credited), 1, (item, hosts))
            extra = sorted(hosts)
            extra.remove(credited)
            if extra:
                self.assertIn(item, requeued, (item, hosts))
                self.assertEqual(extra, [cut], (item, hosts))
                ran_twice.append(item)
        self.assertEqual(sorted(ran_twice), sorted(requeued))

        # The link comes back: the pod joins again, and its late results
        # are refused, not applied (fencing).
        self.net.link_up(c.role_of(cut))
        wait_for(lambda: cut in c.worker_names(), timeout=WAIT,
                 what="%s to rejoin" % cut)

        # Results of attempts that ended while cut off wait in the pod's
        # outbox and go out after the next WELCOME (a result already handed
        # to the dropped socket is gone: that attempt simply ran twice).
        # Each one that arrives is stale, logged and ignored.
        cut_log = os.path.join(c.tmp, c.role_of(cut) + ".log")
        welcomes = wait_for(lambda: len(WELCOMED.findall(read_text(cut_log)))
                            >= 2 and WELCOMED.findall(read_text(cut_log)),
                            timeout=WAIT, what="%s to be welcomed again" % cut)
        late = int(welcomes[-1])
        stale = re.compile(r"ignored: stale result for task %s/(\d+) attempt 1 "
                           r"\(current 2\)" % job["id"])
        wait_for(lambda: len(stale.findall(read_text(
            os.path.join(c.tmp, "ctl.log")))) >= late, timeout=WAIT,
            what="%d late results to reach the controller" % late)
        ignored = sorted(int(t) for t in stale.findall(
            read_text(os.path.join(c.tmp, "ctl.log"))))
        self.assertEqual(len(ignored), late, ignored)
        self.assertLessEqual(set(ignored), {tasks[i]["id"] for i in ran_twice})
        self.assert_result(job["id"])
        self.assertEqual(
            [(t["id"], t["state"], t["attempts"], t["worker"])
             for t in self.work_tasks(job["id"]).values()],
            [(t["id"], t["state"], t["attempts"], t["worker"])
             for t in tasks.values()])


def read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


if __name__ == "__main__":
    unittest.main(verbosity=2)
