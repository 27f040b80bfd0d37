"""A cluster spread over network namespaces, with links that go down.

The controller, three workers and the test's HTTP client each live in a
network namespace of their own with an address on 10.77.0.0/24; veth pairs
join them to a bridge in a hub namespace (or, without bridge support, to a
router namespace, one /24 per node). The data directory is one temporary
directory, which every namespace sees because only the network is
separate. Processes start with `ip netns exec` and are stopped by PID.
The network and the cluster in it come from netns.py.

Needs root and iproute2; skipped otherwise. Namespace names carry the pid
and a random tag, so parallel runs never meet, and every namespace is
deleted when its test ends, whatever happened (deleting a namespace
deletes its veth ends and their peers).
"""
import os
import sys
import unittest

from harness import ClusterTest, wait_for
from netns import WAIT, NetCluster, Network, missing_prerequisite

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

WORKERS = ("w1", "w2", "w3")


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
