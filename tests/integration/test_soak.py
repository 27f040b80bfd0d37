"""A soak under faults: jobs are submitted steadily for a while (45 s, or
SHOAL_SOAK_SECONDS) while workers are killed or stopped and restarted,
and the controller is killed, stopped with SIGTERM, or frozen with
SIGSTOP. Each fault alone has a test of its own (test_faults,
test_durability); this one makes them meet. Afterwards every job that was
answered 201 ends, in the state its tasks call for, every task ran, no
retried submission made a second job, and no process reported a
sanitizer error. The faults come from a seeded generator
(SHOAL_SOAK_SEED, default 1), so a failure can be replayed.
"""
import os
import random
import signal
import time
import unittest

from harness import ClusterTest, FINAL_STATES, wait_for

TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools")

DEFINITIONS = """
tasks:
  spawn:
    input:
      TOOLS: {source: environment}
      modes: {source: parameter}
    exec_command: /usr/bin/python3
    exec_args: ["{TOOLS}/spawn.py", "--modes", "{modes}"]
  act:
    input:
      TOOLS: {source: environment}
      MARKERS: {source: environment}
      item: {source: parameter, default: "edge"}
      mode: {source: parameter, default: ok}
    exec_command: /usr/bin/python3
    exec_args: ["{TOOLS}/act.py", "{MARKERS}", "item-{item}", "{mode}"]
jobs:
  lenient:
    input:
      modes: {source: parameter}
    stages:
      - {name: first, task_class: act}
      - {name: spread, task_class: act, spawn_task: spawn,
         job_failed_on_error: false}
      - {name: last, task_class: act}
  strict:
    input:
      modes: {source: parameter}
    stages:
      - {name: spread, task_class: act, spawn_task: spawn}
      - {name: last, task_class: act}
"""

WORKERS = 3


class SoakTest(ClusterTest):
    definitions = DEFINITIONS

    def setUp(self):
        self.rnd = random.Random(int(os.environ.get("SHOAL_SOAK_SEED", "1")))
        self.seconds = float(os.environ.get("SHOAL_SOAK_SECONDS", "45"))
        self.cluster = self.make_cluster()
        self.markers = os.path.join(self.cluster.tmp, "markers")
        # "slow" tasks run 0.2 s: long enough to be cut by a fault.
        self.env = {"TOOLS": TOOLS, "MARKERS": self.markers,
                    "ACT_PER_JOB": "1", "ACT_SLEEP": "0.2"}
        self.cluster.start_controller()
        for k in range(WORKERS):
            self.start_worker(k)

    def start_worker(self, k):
        self.cluster.start_worker("w%d" % k, slots=4, env=self.env)

    def post_job(self, key, kind, modes):
        """A submission: its job, or None when the controller did not
        answer (down, stopping, frozen): the caller tries again later
        with the same key. Any other answer fails the test."""
        try:
            resp = self.cluster.post(
                "/api/v1/jobs", {"job": kind, "params": {"modes": modes}},
                headers={"Idempotency-Key": key})
        except OSError:
            return None
        if resp.status == 503:
            return None
        self.assertEqual(resp.status, 201, resp)
        return resp.json()

    def fault(self, what):
        c = self.cluster
        rnd = self.rnd
        if what == "worker":
            k = rnd.randrange(WORKERS)
            sig = rnd.choice([signal.SIGKILL, signal.SIGTERM])
            c.kill(c.workers["w%d" % k], sig)
            time.sleep(rnd.uniform(0, 1))
            self.start_worker(k)
            return "worker w%d %s" % (k, sig.name)
        if what == "controller":
            sig = rnd.choice([signal.SIGKILL, signal.SIGTERM])
            c.kill(c.controller, sig)
            if sig == signal.SIGTERM:
                self.assertEqual(c.controller.returncode, 0,
                                 "controller after SIGTERM")
            time.sleep(rnd.uniform(0, 0.5))
            c.start_controller()
            return "controller %s" % sig.name
        pause = rnd.uniform(0.5, 3)
        c.controller.send_signal(signal.SIGSTOP)
        time.sleep(pause)
        c.controller.send_signal(signal.SIGCONT)
        return "controller frozen %.1f s" % pause

    def test_jobs_submitted_through_faults_all_end_as_their_tasks_say(self):
        c = self.cluster
        rnd = self.rnd
        accepted = {}       # key -> (job, kind, modes)
        unanswered = []     # (key, kind, modes) to submit again
        faults = []
        start = time.monotonic()
        due = {"worker": start + 3, "controller": start + 8,
               "freeze": start + 13}
        period = {"worker": (3, 7), "controller": (10, 16),
                  "freeze": (9, 15)}
        n = 0
        while time.monotonic() - start < self.seconds:
            now = time.monotonic()
            for what, when in due.items():
                if now >= when:
                    faults.append(self.fault(what))
                    due[what] = time.monotonic() + rnd.uniform(*period[what])
            if unanswered and rnd.random() < 0.5:
                key, kind, modes = unanswered.pop(0)
            else:
                n += 1
                key = "soak-%d" % n
                kind = rnd.choice(["lenient", "lenient", "strict"])
                modes = ",".join(rnd.choice(["ok", "ok", "slow", "fail"])
                                 for _ in range(rnd.randrange(1, 9)))
            job = self.post_job(key, kind, modes)
            if job is None:
                unanswered.append((key, kind, modes))
            else:
                accepted[key] = (job, kind, modes)
            time.sleep(rnd.uniform(0.05, 0.2))
        for key, kind, modes in unanswered:
            job = wait_for(lambda: self.post_job(key, kind, modes),
                           what="submission %s" % key)
            accepted[key] = (job, kind, modes)
        self.assertGreater(len(faults), 5, faults)
        self.assertGreater(len(accepted), 100)

        for key, (job, kind, modes) in accepted.items():
            with self.subTest(key=key, faults=faults):
                self.check_job(key, job, kind, modes.split(","))
        # A key answered twice named one job: as many jobs as keys.
        listed = c.get("/api/v1/jobs?limit=1000").json()["jobs"]
        self.assertEqual(len(listed), len(accepted))
        self.assertEqual({j["id"] for j in listed},
                         {job["id"] for job, _, _ in accepted.values()})

    def check_job(self, key, job, kind, modes):
        c = self.cluster
        done = c.wait_job(job["id"], timeout=180)
        failing = "fail" in modes
        want = "failed" if kind == "strict" and failing else "succeeded"
        self.assertEqual(done["state"], want, done)
        tasks = c.tasks(job["id"])
        for task in tasks:
            self.assertIn(task["state"], FINAL_STATES, task)
        spread = [t for t in tasks
                  if t["stage"] == "spread" and t["kind"] == "task"]
        if want == "succeeded":
            self.assertEqual(len(spread), len(modes), tasks)
        for task in spread:
            mode = task["params"]["mode"]
            if task["state"] != "canceled":
                self.assertEqual(task["state"],
                                 "failed" if mode == "fail" else "succeeded",
                                 task)
            if task["state"] == "succeeded":
                marker = os.path.join(self.markers, job["id"],
                                      "item-" + task["params"]["item"])
                with open(marker) as f:
                    self.assertIn("done", f.read(), task)


if __name__ == "__main__":
    unittest.main()
