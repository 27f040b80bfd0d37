"""Faults injected into a real cluster on loopback: stopped, terminated,
killed and restarted workers, a flood of tasks, hostile ZeroMQ peers, and a
failing job that must not leave its other tasks running.

Each task runs tools/act.py (through tools/gate.py), which appends a line
per event to a marker file, so a test can tell that a task ran, how often,
and in which process. Every test ends with the same check: each job it
submitted reached exactly one final state and no task's marker is missing.
Waits are bounded; no assertion depends on how fast anything happened.
"""
import json
import os
import signal
import subprocess
import sys
import time
import unittest

import zmq

from harness import WORKER, ClusterTest, wait_for

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
    exec_args: ["{TOOLS}/gate.py", "{MARKERS}", "{name}-{item}", "{mode}"]
  last:
    input:
      TOOLS: {source: environment}
      MARKERS: {source: environment}
    exec_command: /usr/bin/python3
    exec_args: ["{TOOLS}/act.py", "{MARKERS}", "last", "ok"]
  spawn-count:
    input:
      TOOLS: {source: environment}
      count: {source: parameter}
    exec_command: /usr/bin/python3
    exec_args: ["{TOOLS}/spawn.py", "{count}"]
  spawn-modes:
    input:
      TOOLS: {source: environment}
      modes: {source: parameter}
    exec_command: /usr/bin/python3
    exec_args: ["{TOOLS}/spawn.py", "--modes", "{modes}"]
jobs:
  many:
    input:
      count: {source: parameter}
      name: {source: parameter, default: one}
    stages:
      - {name: many, task_class: act, spawn_task: spawn-count, job_failed_on_error: false}
  modes:
    input:
      modes: {source: parameter}
      name: {source: parameter, default: one}
    stages:
      - {name: spread, task_class: act, spawn_task: spawn-modes, job_failed_on_error: false}
  strict:
    input:
      modes: {source: parameter}
    stages:
      - {name: spread, task_class: act, spawn_task: spawn-modes, job_failed_on_error: true}
      - {name: after, task_class: last}
"""

# Bounded waits, generous so a loaded machine does not fail a test.
WAIT = 60


def worker_option(option):
    """True when shoal-worker --help lists `option`."""
    try:
        out = subprocess.run([WORKER, "--help"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=30).stdout
    except OSError:
        return False
    return option.encode() in out


# A worker that drains on SIGTERM is told not to, where it is to hand its
# running tasks back at once.
NO_DRAIN = ("--drain-timeout", "0") if worker_option("--drain-timeout") else ()


class FaultTest(ClusterTest, faultkit.SettledChecks):
    definitions = DEFINITIONS

    def setUp(self):
        self.cluster = self.make_cluster()
        self.markers = os.path.join(self.cluster.tmp, "markers")
        os.makedirs(self.markers)
        self.cluster.start_controller()

    # ---- helpers -------------------------------------------------------
    def env(self, **extra):
        env = {"TOOLS": TOOLS, "MARKERS": self.markers}
        env.update(extra)
        return env

    def marker(self, name):
        return faultkit.read_marker(os.path.join(self.markers, name))

    def log_of(self, name):
        return faultkit.read_text(os.path.join(self.cluster.tmp, name + ".log"))

    def spawned(self, job_id):
        """The job's spawned tasks (not its spawn task), by index."""
        return {t["index"]: t for t in self.cluster.tasks(job_id)
                if t["kind"] == "task"}

    def wait_started(self, names):
        wait_for(lambda: all(self.marker(n) for n in names),
                 timeout=WAIT, what="tasks %s to start" % ", ".join(names))

    def release(self):
        """Lets every gate.py task waiting for it end."""
        open(os.path.join(self.markers, ".release"), "w").close()

    def continue_on_cleanup(self, proc):
        """SIGCONT before the cluster stops it, should the test fail while
        the process is stopped (cleanups run last in, first out)."""
        def resume():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
        self.addCleanup(resume)

    # ---- the tests -----------------------------------------------------
    def test_stopped_worker_tasks_rerun_elsewhere_and_its_late_results_are_ignored(self):
        c = self.cluster
        # w1's tasks outlive the time it is stopped, so they end after it
        # is resumed and their results reach a controller that moved on.
        w1 = c.start_worker("w1", slots=2, env=self.env(ACT_SLEEP="8"))
        job = c.submit("modes", {"modes": "slow,slow"})
        self.wait_started(["one-0", "one-1"])
        first = {i: t["worker"] for i, t in self.spawned(job["id"]).items()}
        self.assertEqual(first, {0: "w1", 1: "w1"})

        self.continue_on_cleanup(w1)
        os.kill(w1.pid, signal.SIGSTOP)
        c.start_worker("w2", slots=2, env=self.env(ACT_SLEEP="0.2"))
        # Past the heartbeat timeout the controller gives both tasks to w2.
        wait_for(lambda: all(t["attempts"] == 2 and t["worker"] == "w2"
                             for t in self.spawned(job["id"]).values()),
                 timeout=WAIT, what="both tasks to run again on w2")
        os.kill(w1.pid, signal.SIGCONT)

        done = c.wait_job(job["id"], timeout=WAIT)
        self.assertEqual(done["state"], "succeeded", done)
        # w1's own attempts end too (w1 saw nothing of the re-run) ...
        w1_pids = [self.marker(n)[0][2] for n in ("one-0", "one-1")]
        wait_for(lambda: not faultkit.live_task_processes(w1_pids,
                                                          self.markers),
                 timeout=WAIT, what="w1's first attempts to end")
        # ... and what it reports about them is not applied: the controller
        # calls it stale, or does not know w1 any more and says RECONNECT.
        def late_results_refused():
            log = self.log_of("controller")
            stale = all("stale result for task %s/%d attempt 1"
                        % (job["id"], t["id"]) in log
                        for t in self.spawned(job["id"]).values())
            return stale or "controller does not know us" in self.log_of("w1")
        wait_for(late_results_refused, timeout=WAIT,
                 what="the stale results to be refused")
        # w1 is back.
        wait_for(lambda: "w1" in c.worker_names(), timeout=WAIT,
                 what="w1 to rejoin")

        after = c.job(job["id"])
        self.assertEqual(after["state"], "succeeded")
        counts = after["stages"][0]["tasks"]
        self.assertEqual((counts["total"], counts["succeeded"]), (3, 3), counts)
        for task in self.spawned(job["id"]).values():
            self.assertEqual((task["attempts"], task["worker"], task["state"]),
                             (2, "w2", "succeeded"), task)
        for name in ("one-0", "one-1"):
            # Both ran twice, once on each worker.
            self.assertEqual([e for e, _, _ in self.marker(name)].count("start"),
                             2, name)
        self.assert_settled([job["id"]], done=["one-0", "one-1"])

    def test_a_thousand_short_tasks_leave_no_zombie_and_each_runs_once(self):
        c = self.cluster
        w1 = c.start_worker("w1", slots=4, env=self.env())
        w2 = c.start_worker("w2", slots=4, env=self.env())
        job = c.submit("many", {"count": 1000})
        done = c.wait_job(job["id"], timeout=240)
        self.assertEqual(done["state"], "succeeded", done)
        counts = done["stages"][0]["tasks"]
        self.assertEqual((counts["total"], counts["succeeded"]), (1001, 1001),
                         counts)
        tasks = c.tasks(job["id"])
        self.assertEqual(len(tasks), 1001)
        self.assertEqual({t["state"] for t in tasks}, {"succeeded"})
        self.assertEqual({t["attempts"] for t in tasks}, {1})
        self.assertEqual({t["worker"] for t in tasks}, {"w1", "w2"})
        # Every result was sent after its process was reaped, so once the
        # job has ended no child of either worker may be left a zombie.
        self.assertIsNone(w1.poll())
        self.assertIsNone(w2.poll())
        self.assertEqual(faultkit.zombie_children([w1.pid, w2.pid]), {},
                         "zombie children of the workers")
        self.assert_settled([job["id"]],
                            once=["one-%d" % i for i in range(1000)])

    def start_worker(self, name, slots, env, extra=(), wait=True):
        # harness.Cluster.start_worker takes `extra` only in newer versions.
        if extra:
            return self.cluster.start_worker(name, slots=slots, env=env,
                                             extra=extra, wait=wait)
        return self.cluster.start_worker(name, slots=slots, env=env,
                                         wait=wait)

    def test_terminated_worker_says_bye_and_its_task_completes_elsewhere(self):
        c = self.cluster
        w1 = self.start_worker("w1", 1, self.env(ACT_SLEEP="30"), NO_DRAIN)
        job = c.submit("modes", {"modes": "slow"})
        self.wait_started(["one-0"])
        self.assertEqual(self.spawned(job["id"])[0]["worker"], "w1")
        first_pid = self.marker("one-0")[0][2]
        self.assertEqual(faultkit.live_task_processes([first_pid], self.markers),
                         [first_pid])
        c.start_worker("w2", slots=1, env=self.env(ACT_SLEEP="0.2"))

        c.kill(w1, signal.SIGTERM)
        self.assertEqual(w1.returncode, 0, self.log_of("w1"))
        w1_log = self.log_of("w1")
        self.assertIn("stopped", w1_log)
        # The task process went with the worker.
        self.assertEqual(faultkit.live_task_processes([first_pid], self.markers),
                         [])

        done = c.wait_job(job["id"], timeout=WAIT)
        self.assertEqual(done["state"], "succeeded", done)
        self.assertIn("worker w1 said goodbye", self.log_of("controller"))
        self.assertNotIn("w1", c.worker_names())
        task = self.spawned(job["id"])[0]
        self.assertEqual((task["attempts"], task["worker"]), (2, "w2"), task)
        seen = self.marker("one-0")
        self.assertEqual([e for e, _, _ in seen], ["start", "start", "done"])
        self.assertNotEqual(seen[1][2], first_pid)
        self.assert_settled([job["id"]], done=["one-0"])

    @unittest.skipUnless(worker_option("--drain-timeout"),
                         "shoal-worker has no --drain-timeout")
    def test_draining_worker_finishes_its_task_takes_no_new_one_and_exits(self):
        c = self.cluster
        w1 = self.start_worker("w1", 1, self.env(), ("--drain-timeout", "60"))
        first = c.submit("modes", {"modes": "ok-on-release"})
        self.wait_started(["one-0"])
        c.start_worker("w2", slots=1, env=self.env())

        w1.shoal_stopped_on_purpose = True
        os.kill(w1.pid, signal.SIGTERM)
        wait_for(lambda: any(w["id"] == "w1" and w.get("draining")
                             for w in c.get("/api/v1/workers").json()["workers"]),
                 timeout=WAIT, what="w1 to be listed as draining")
        second = c.submit("modes", {"modes": "ok", "name": "two"})
        self.assertEqual(c.wait_job(second["id"], timeout=WAIT)["state"],
                         "succeeded")
        self.assertEqual(self.spawned(second["id"])[0]["worker"], "w2")
        self.assertIsNone(w1.poll(), "w1 left before its task ended")

        self.release()
        self.assertEqual(w1.wait(timeout=WAIT), 0, self.log_of("w1"))
        done = c.wait_job(first["id"], timeout=WAIT)
        self.assertEqual(done["state"], "succeeded", done)
        task = self.spawned(first["id"])[0]
        self.assertEqual((task["attempts"], task["worker"]), (1, "w1"), task)
        self.assertIn("worker w1 said goodbye", self.log_of("controller"))
        self.assertNotIn("w1", c.worker_names())
        self.assert_settled([first["id"], second["id"]],
                            once=["one-0", "two-0"])

    def test_killed_worker_restarted_with_its_name_rejoins_and_gets_work(self):
        c = self.cluster
        old = c.start_worker("w1", slots=1, env=self.env(ACT_SLEEP="30"))
        first_job = c.submit("modes", {"modes": "slow"})
        self.wait_started(["one-0"])
        first_pid = self.marker("one-0")[0][2]
        self.assertEqual(faultkit.live_task_processes([first_pid], self.markers),
                         [first_pid])

        c.kill(old, signal.SIGKILL)
        new = c.start_worker("w1", slots=1, env=self.env(ACT_SLEEP="0.2"),
                             wait=False)
        # The controller may still list the dead w1 for a moment; the task
        # it held comes back and runs on the restarted one.
        done = c.wait_job(first_job["id"], timeout=WAIT)
        self.assertEqual(done["state"], "succeeded", done)
        task = self.spawned(first_job["id"])[0]
        self.assertEqual((task["attempts"], task["worker"]), (2, "w1"), task)
        self.assertEqual(c.worker_names(), ["w1"])
        self.assertEqual(faultkit.live_task_processes([first_pid], self.markers),
                         [], "the killed worker's task outlived it")
        # And it takes new work.
        second_job = c.submit("modes", {"modes": "ok,ok,ok", "name": "two"})
        done = c.wait_job(second_job["id"], timeout=WAIT)
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual({t["worker"] for t in c.tasks(second_job["id"])},
                         {"w1"})
        self.assertIsNone(new.poll())
        self.assertEqual([e for e, _, _ in self.marker("one-0")],
                         ["start", "start", "done"])
        self.assert_settled([first_job["id"], second_job["id"]],
                            done=["one-0"], once=["two-0", "two-1", "two-2"])

    def test_task_sent_to_workers_that_just_died_still_runs(self):
        c = self.cluster
        # w1 is busy, so the only free slots are those of three workers
        # that are killed together (a node going down, say) just before a
        # job comes in.
        c.start_worker("w1", slots=1, env=self.env())
        busy = c.submit("modes", {"modes": "ok-on-release"})
        self.wait_started(["one-0"])
        dead = [c.start_worker("d%d" % i, slots=1, env=self.env())
                for i in range(3)]
        for proc in dead:
            c.kill(proc, signal.SIGKILL)
        job = c.submit("modes", {"modes": "ok", "name": "late"})
        self.release()

        # Sending a TASK to a peer that is gone fails at once; the task was
        # never delivered, so it must wait for w1 rather than be charged
        # with a lost worker for each dead one.
        done = c.wait_job(job["id"], timeout=WAIT)
        self.assertEqual(c.wait_job(busy["id"], timeout=WAIT)["state"],
                         "succeeded")
        spawn = [t for t in c.tasks(job["id"]) if t["kind"] == "spawn"][0]
        self.assertEqual((spawn["state"], spawn["error"]), ("succeeded", None),
                         spawn)
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(self.spawned(job["id"])[0]["worker"], "w1")
        self.assertEqual(c.worker_names(), ["w1"])
        self.assert_settled([busy["id"], job["id"]], once=["one-0", "late-0"])

    def _peer(self):
        ctx = zmq.Context()
        self.addCleanup(ctx.term)
        sock = ctx.socket(zmq.DEALER)
        sock.linger = 0
        self.addCleanup(sock.close)
        sock.connect("tcp://127.0.0.1:%d" % self.cluster.zmq_port)
        return sock

    def _recv(self, sock, timeout):
        """One message's frames, or None after `timeout` seconds."""
        if not sock.poll(int(timeout * 1000)):
            return None
        return sock.recv_multipart()

    def test_malformed_zeromq_input_leaves_the_controller_serving(self):
        c = self.cluster
        c.start_worker("w1", slots=2, env=self.env(ACT_SLEEP="1"))
        running = c.submit("modes", {"modes": "slow,slow,slow"})
        self.wait_started(["one-0"])
        peer = self._peer()
        hello_99 = {"protocol": 99, "worker": "intruder", "host": "nowhere",
                    "slots": 4}
        garbage = os.urandom(5 * 1024 * 1024)
        for frames in (
                [b"NO-SUCH-COMMAND", b"{}"],
                [b"HEARTBEAT", b"this is not json"],
                [b"HEARTBEAT", b"[1, 2, 3]"],
                [b"HELLO"],
                [b"HEARTBEAT", b"{}", b"one frame too many"],
                [b"HELLO", json.dumps(hello_99).encode()],
                [b"RESULT", b"{\"job\": 7}"],
                [garbage],
                [b"RESULT", garbage],
                [garbage, garbage],
                [b"", b""]):
            peer.send_multipart(frames)
        # The intruder never became a worker, and the controller is up.
        self.assertIsNone(c.controller.poll())
        self.assertEqual(c.get("/readyz").status, 200)
        self.assertEqual(c.worker_names(), ["w1"])
        # The job that was running finishes on the real worker, and a new
        # one runs too.
        done = c.wait_job(running["id"], timeout=WAIT)
        self.assertEqual(done["state"], "succeeded", done)
        after = c.submit("modes", {"modes": "ok,ok", "name": "after"})
        self.assertEqual(c.wait_job(after["id"], timeout=WAIT)["state"],
                         "succeeded")
        self.assertIsNone(c.controller.poll())
        self.assertEqual(c.worker_names(), ["w1"])
        log = self.log_of("controller")
        self.assertIn("protocol version 99 is not supported", log)
        self.assertIn("unknown command", log)
        self.assert_settled([running["id"], after["id"]],
                            once=["one-0", "one-1", "one-2",
                                  "after-0", "after-1"])

    def test_idle_workers_and_controller_keep_each_other_for_many_periods(self):
        # Idle, the workers hear only the controller's heartbeats (spread
        # over the 1 s period) and the controller only their answers.
        # Three silent periods would make either side give the other up:
        # after five, both workers are still on their first connection.
        for name in ("w1", "w2"):
            self.cluster.start_worker(name)
        def connections():
            return {w["id"]: w["connected_at"] for w in
                    self.cluster.get("/api/v1/workers").json()["workers"]}
        before = connections()
        time.sleep(5)
        self.assertEqual(connections(), before)
        for name in ("w1", "w2"):
            self.assertNotIn("silent for", self.log_of(name))
        self.assertNotIn(" lost: ", self.log_of("controller"))

    def test_unknown_peer_is_told_to_reconnect(self):
        c = self.cluster
        c.start_worker("w1", slots=2, env=self.env())
        peer = self._peer()
        result = {"job": "0123456789abcdef", "task": 1, "attempt": 1,
                  "status": "exited", "exit_code": 0, "duration_ms": 5}
        peer.send_multipart([b"RESULT", json.dumps(result).encode()])
        answer = self._recv(peer, WAIT)
        self.assertEqual(answer, [b"RECONNECT", b"{}"])
        peer.send_multipart([b"HEARTBEAT", b"{}"])
        self.assertEqual(self._recv(peer, WAIT), [b"RECONNECT", b"{}"])
        # The controller goes on serving its real worker.
        job = c.submit("modes", {"modes": "ok"})
        self.assertEqual(c.wait_job(job["id"], timeout=WAIT)["state"],
                         "succeeded")
        self.assertEqual(c.worker_names(), ["w1"])
        self.assert_settled([job["id"]], once=["one-0"])

    def test_failing_strict_job_leaves_no_task_process_on_any_worker(self):
        c = self.cluster
        env = self.env(ACT_SLEEP="30")
        c.start_worker("w1", slots=10, env=env)
        c.start_worker("w2", slots=10, env=env)
        # 19 tasks that sleep 30 s, and one that fails when released.
        modes = ["slow"] * 20
        modes[7] = "fail-on-release"
        names = ["one-%d" % i for i in range(20)]
        self.addCleanup(lambda: faultkit.kill_leftovers(
            faultkit.start_pids(self.markers, names), self.markers))
        job = c.submit("strict", {"modes": ",".join(modes)})
        self.wait_started(names)
        pids = faultkit.start_pids(self.markers, names)
        self.assertEqual(len(pids), 20)
        # All twenty run, on both workers, ...
        self.assertEqual(faultkit.live_task_processes(pids, self.markers),
                         sorted(pids))
        running = self.spawned(job["id"]).values()
        self.assertEqual({t["state"] for t in running}, {"running"})
        self.assertEqual({t["worker"] for t in running}, {"w1", "w2"})
        # ... when one of them fails.
        self.release()

        done = c.wait_job(job["id"], timeout=WAIT)
        self.assertEqual(done["state"], "failed", done)
        self.assertIn("exited with code 1", done["error"])
        spread, after = done["stages"]
        self.assertEqual(spread["tasks"]["failed"], 1, spread)
        self.assertEqual(spread["tasks"]["canceled"], 19, spread)
        self.assertEqual(after["state"], "pending", after)
        # Once the workers have reported every cancel, no task process is
        # left, nor anything else in the tasks' process groups.
        wait_for(lambda: all(w["busy"] == 0 for w in
                             c.get("/api/v1/workers").json()["workers"]),
                 timeout=WAIT, what="both workers to report the cancels")
        self.assertEqual(faultkit.live_task_processes(pids, self.markers), [],
                         "task processes left after the job failed")
        for name in names:
            self.assertNotIn("done", [e for e, _, _ in self.marker(name)],
                             name)
        states = sorted(t["state"] for t in self.spawned(job["id"]).values())
        self.assertEqual(states, ["canceled"] * 19 + ["failed"])
        self.assertEqual(faultkit.events(self.markers, "last"), [])
        self.assert_settled([job["id"]])


if __name__ == "__main__":
    unittest.main(verbosity=2)
