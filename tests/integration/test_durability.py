"""Durable controller state: the controller is killed with SIGKILL while
jobs are submitted and run, and restarted; every job that got a 201
finishes, with every task's marker present, and tasks that were running on
workers during the restart are adopted rather than run again. Stopped
with SIGTERM while jobs are submitted, it answers each request truthfully
and exits at once.
"""
import os
import random
import signal
import subprocess
import threading
import time
import unittest
import uuid

from harness import ClusterTest, wait_for

TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools")

DEFINITIONS = """
tasks:
  first:
    input:
      TOOLS: {source: environment}
      MARKERS: {source: environment}
    exec_command: /usr/bin/python3
    exec_args: ["{TOOLS}/act.py", "{MARKERS}", "first", "ok"]
  act:
    input:
      TOOLS: {source: environment}
      MARKERS: {source: environment}
      item: {source: parameter, default: "0"}
      mode: {source: parameter, default: ok}
    exec_command: /usr/bin/python3
    exec_args: ["{TOOLS}/act.py", "{MARKERS}", "item-{item}", "{mode}"]
  spawn:
    input:
      TOOLS: {source: environment}
      count: {source: parameter}
    exec_command: /usr/bin/python3
    exec_args: ["{TOOLS}/spawn.py", "{count}"]
jobs:
  fan:
    input:
      count: {source: parameter}
    stages:
      - {name: first, task_class: first}
      - {name: spread, task_class: act, spawn_task: spawn}
  slow:
    input:
      mode: {source: parameter}
    stages:
      - {name: only, task_class: act}
"""


class DurabilityTest(ClusterTest):
    definitions = DEFINITIONS

    def setUp(self):
        self.cluster = self.make_cluster()
        self.markers = os.path.join(self.cluster.tmp, "markers")
        self.env = {"TOOLS": TOOLS, "MARKERS": self.markers,
                    "ACT_PER_JOB": "1"}
        self.cluster.start_controller()

    def marker(self, job_id, name):
        path = os.path.join(self.markers, job_id, name)
        try:
            with open(path) as f:
                return [line.split()[0] for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def restart_controller(self):
        c = self.cluster
        c.kill(c.controller, signal.SIGKILL)
        c.start_controller()

    def test_sigkill_during_submissions_loses_no_accepted_job(self):
        c = self.cluster
        c.start_worker("w1", slots=4, env=self.env)
        c.start_worker("w2", slots=4, env=self.env)
        accepted = []
        stop = threading.Event()

        def submit_loop():
            # A client that retries with the same Idempotency-Key until it
            # gets an answer, as a careful client of any API would.
            for n in range(40):
                if stop.is_set():
                    return
                key = str(uuid.uuid4())
                body = {"job": "fan", "params": {"count": 5 + n % 7}}
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    try:
                        resp = c.post("/api/v1/jobs", body,
                                      headers={"Idempotency-Key": key})
                    except OSError:
                        time.sleep(0.1)
                        continue
                    if resp.status == 201:
                        accepted.append((resp.json()["id"], body))
                        break
                    time.sleep(0.1)
                time.sleep(0.02)

        client = threading.Thread(target=submit_loop)
        client.start()
        rng = random.Random(7)
        try:
            for _ in range(3):
                time.sleep(rng.uniform(0.3, 1.5))
                self.restart_controller()
        finally:
            client.join(timeout=300)
            stop.set()
        self.assertGreaterEqual(len(accepted), 40)
        ids = [job_id for job_id, _ in accepted]
        self.assertEqual(len(set(ids)), len(ids), "a key made two jobs")
        for job_id, body in accepted:
            done = c.wait_job(job_id, timeout=240)
            self.assertEqual(done["state"], "succeeded", done)
            self.assertIn("done", self.marker(job_id, "first"), job_id)
            for i in range(body["params"]["count"]):
                self.assertIn("done", self.marker(job_id, "item-%d" % i),
                              "job %s item %d" % (job_id, i))
        listed = c.get("/api/v1/jobs?limit=1000").json()["jobs"]
        self.assertEqual(sorted(j["id"] for j in listed), sorted(ids))

    def test_sigterm_during_submissions_answers_each_truthfully(self):
        """A controller asked to stop while clients submit: every job
        answered 201 is there after a restart, and no refusal made a job.
        Answers held for the store go out before the controller stops
        serving; a request that comes later is refused at once (503)."""
        c = self.cluster
        accepted, refused = [], []
        unknown = [0]   # sent, then the connection was cut: either way
        lock = threading.Lock()
        controller = c.controller

        def submit_loop():
            body = {"job": "slow", "params": {"mode": "ok"}, "start": False}
            while controller.poll() is None:
                try:
                    resp = c.post("/api/v1/jobs", body)
                except ConnectionRefusedError:
                    continue        # never reached the controller
                except OSError:
                    with lock:
                        unknown[0] += 1
                    continue
                with lock:
                    if resp.status == 201:
                        accepted.append(resp.json()["id"])
                    else:
                        refused.append(resp)

        clients = [threading.Thread(target=submit_loop) for _ in range(4)]
        for client in clients:
            client.start()
        try:
            wait_for(lambda: len(accepted) >= 50, timeout=60)
            c.kill(controller, signal.SIGTERM)
        finally:
            c.kill(controller, signal.SIGKILL)   # only if still running
            for client in clients:
                client.join(timeout=60)
        # Stopped by SIGTERM, not by the SIGKILL that follows 10 s later:
        # a handler waiting for an answer the loop held used to wait out
        # its own 10 s.
        self.assertEqual(controller.returncode, 0)
        for resp in refused:
            self.assertProblem(resp, 503)
            self.assertIn(resp.json()["title"],
                          ("Controller stopping", "Controller busy"))
        c.start_controller()
        listed = {j["id"] for j in c.get("/api/v1/jobs?limit=1000")
                  .json()["jobs"]}
        self.assertLess(len(listed), 1000, "more jobs than one page holds")
        missing = set(accepted) - listed
        self.assertEqual(missing, set(), "jobs answered 201 are gone")
        # Jobs no 201 named came from requests whose answer was lost.
        self.assertLessEqual(len(listed) - len(accepted), unknown[0])

    def test_running_task_is_adopted_not_run_again_after_a_restart(self):
        c = self.cluster
        c.start_worker("w1", slots=1, env=dict(self.env, ACT_SLEEP="4"))
        job = c.submit("slow", {"mode": "slow"})
        wait_for(lambda: self.marker(job["id"], "item-0"),
                 what="the task to start")
        c.wait_stored()   # its dispatch, or it is not running when read back
        self.restart_controller()
        done = c.wait_job(job["id"], timeout=120)
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(self.marker(job["id"], "item-0"), ["start", "done"])
        task = c.tasks(job["id"])[0]
        self.assertEqual(task["attempts"], 1)
        with open(os.path.join(c.tmp, "controller.log")) as f:
            self.assertIn("adopted 1 running tasks", f.read())

    def test_finished_jobs_and_their_logs_survive_a_restart(self):
        c = self.cluster
        c.start_worker("w1", slots=2, env=self.env)
        job = c.submit("fan", {"count": 3})
        before = c.wait_job(job["id"])
        tasks_before = c.tasks(job["id"])
        # Seen ended is not yet stored: the writer groups what workers
        # report for up to 5 ms (a crash then runs those tasks again).
        c.wait_stored()
        self.restart_controller()
        after = c.job(job["id"])
        self.assertEqual(after, before)
        self.assertEqual(c.tasks(job["id"]), tasks_before)
        log = c.get("/api/v1/jobs/%s/tasks/0/log" % job["id"])
        self.assertEqual(log.status, 200)
        self.assertIn("done first", log.body)

    def test_jobs_keep_their_definitions_when_the_definitions_change(self):
        """The definitions are edited between two runs: a class renamed
        (`slow` goes), another given a stage more. The restarted controller
        reads every job back with the definitions it was submitted under:
        a finished job shows its stages as they were, a job submitted
        before and started after runs the commands of its own time, so
        does a failed one retried, and new jobs take the new definitions. Before, such a restart failed
        while any stored job named a changed class."""
        c = self.cluster
        c.start_worker("w1", slots=2, env=self.env)
        finished = c.wait_job(c.submit("fan", {"count": 2})["id"])
        waiting = c.submit("slow", {"mode": "ok"}, start=False)
        # Fails its first run, succeeds when run again.
        failed = c.wait_job(c.submit("slow", {"mode": "fail-once"})["id"])
        self.assertEqual(failed["state"], "failed", failed)
        edited = DEFINITIONS.replace(
            "  slow:\n", "  renamed:\n").replace(
            "      - {name: spread, task_class: act, spawn_task: spawn}\n",
            "      - {name: spread, task_class: act, spawn_task: spawn}\n"
            "      - {name: after, task_class: first}\n")
        self.assertNotEqual(edited, DEFINITIONS)
        with open(c.defs_path, "w") as f:
            f.write(edited)
        c.kill(c.controller, signal.SIGTERM)
        c.start_controller()

        self.assertEqual(c.job(finished["id"]), finished)
        self.assertEqual([s["name"] for s in finished["stages"]],
                         ["first", "spread"])
        # The job names its definitions, and the API serves both versions.
        first = finished["definitions"]
        now = c.get("/api/v1/definitions").json()
        self.assertNotEqual(now["version"], first)
        self.assertEqual(c.job(waiting["id"])["definitions"], first)
        old = c.get("/api/v1/definitions/%d" % first).json()
        self.assertEqual(old["version"], first)
        self.assertEqual([j["id"] for j in old["jobs"]], ["fan", "slow"])
        self.assertEqual([j["id"] for j in now["jobs"]], ["fan", "renamed"])
        self.assertProblem(c.post("/api/v1/jobs", {"job": "slow"}), 404,
                           field="job")
        resp = c.post("/api/v1/jobs/%s/start" % waiting["id"])
        self.assertEqual(resp.status, 200, resp)
        done = c.wait_job(waiting["id"])
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(done["job"], "slow")
        self.assertEqual(self.marker(waiting["id"], "item-0"),
                         ["start", "done"])
        # Retried, a failed job runs its own class again, gone from the file.
        resp = c.post("/api/v1/jobs/%s/retry" % failed["id"])
        self.assertEqual(resp.status, 200, resp)
        retried = c.wait_job(failed["id"])
        self.assertEqual((retried["state"], retried["retries"]),
                         ("succeeded", 1), retried)
        self.assertEqual(self.marker(failed["id"], "item-0"),
                         ["start", "start", "done"])
        new = c.wait_job(c.submit("fan", {"count": 1})["id"])
        self.assertEqual([s["name"] for s in new["stages"]],
                         ["first", "spread", "after"])
        self.assertEqual(new["state"], "succeeded", new)

        # Once more, back to the first text: the same version again,
        # and every job still reads back as it was.
        with open(c.defs_path, "w") as f:
            f.write(DEFINITIONS)
        c.kill(c.controller, signal.SIGTERM)
        c.start_controller()
        self.assertEqual(c.job(new["id"])["stages"], new["stages"])
        self.assertEqual(c.job(done["id"])["state"], "succeeded")
        self.assertEqual(c.get("/api/v1/definitions").json()["version"],
                         first)
        self.assertEqual(new["definitions"], now["version"])

    def test_start_and_cancel_answered_are_on_disk(self):
        # A 200 to start or cancel promises the change is stored: a
        # SIGKILL right after it must not undo it.
        c = self.cluster
        for _ in range(5):
            started = c.submit("slow", {"mode": "ok"}, start=False)
            canceled = c.submit("slow", {"mode": "ok"}, start=False)
            resp = c.post("/api/v1/jobs/%s/start" % started["id"])
            self.assertEqual(resp.status, 200, resp)
            resp = c.post("/api/v1/jobs/%s/cancel" % canceled["id"])
            self.assertEqual(resp.status, 200, resp)
            c.controller.send_signal(signal.SIGKILL)
            c.controller.wait()
            c.start_controller()
            self.assertEqual(c.job(started["id"])["state"], "running")
            self.assertEqual(c.job(canceled["id"])["state"], "canceled")

    def test_ephemeral_controller_forgets_jobs(self):
        c = self.cluster
        c.kill(c.controller, signal.SIGTERM)
        c.start_controller(["--ephemeral"])
        job = c.submit("slow", {"mode": "ok"}, start=False)
        c.kill(c.controller, signal.SIGTERM)
        c.start_controller(["--ephemeral"])
        self.assertProblem(c.get("/api/v1/jobs/" + job["id"]), 404)

    def test_ephemeral_controller_answers_with_the_job_view(self):
        """Without a store no answer waits for a write: a submission's 201
        and a cancel's 200 carry the job's whole view, the one GET gives."""
        c = self.cluster
        c.kill(c.controller, signal.SIGTERM)
        c.start_controller(["--ephemeral"])
        job = c.submit("slow", {"mode": "ok"}, start=False)
        self.assertEqual(job["state"], "created")
        self.assertEqual(job, c.get("/api/v1/jobs/" + job["id"]).json())
        canceled = c.post("/api/v1/jobs/%s/cancel" % job["id"])
        self.assertEqual(canceled.status, 200, canceled)
        self.assertEqual(canceled.json()["state"], "canceled")
        self.assertEqual(canceled.json(),
                         c.get("/api/v1/jobs/" + job["id"]).json())


class StoreFullTest(ClusterTest):
    """The state store's disk fills up: a submission it cannot store is
    answered 503 and its job canceled, every job answered 201 before or
    after survives a SIGKILL, and the controller goes on throughout. The
    state directory is a small tmpfs (root only, as CI runs)."""
    definitions = DEFINITIONS

    def setUp(self):
        self.cluster = self.make_cluster()
        self.state_dir = self.mount_small_state_dir(self.cluster)

    def submit(self, size):
        # Not started: only the job row (and its params) is written.
        return self.cluster.post("/api/v1/jobs", {
            "job": "slow", "start": False,
            "params": {"mode": "x" * size}})

    def test_a_full_disk_refuses_with_503_and_loses_nothing_accepted(self):
        c = self.cluster
        c.start_controller(extra=("--state-dir", self.state_dir))
        accepted, refused = [], None
        for _ in range(200):
            resp = self.submit(50000)
            if resp.status == 201:
                accepted.append(resp.json()["id"])
                continue
            refused = resp
            break
        self.assertIsNotNone(refused, "the 1 MiB state directory never "
                                      "filled up")
        self.assertProblem(refused, 503)
        self.assertIn("could not be stored", refused.json()["detail"])
        self.assertGreater(len(accepted), 0)
        # The refused job was canceled; the accepted ones wait as they were.
        jobs = c.get("/api/v1/jobs?limit=1000").json()["jobs"]
        states = {job["id"]: job["state"] for job in jobs}
        for job_id in accepted:
            self.assertEqual(states[job_id], "created", job_id)
        self.assertEqual(len(jobs), len(accepted) + 1)
        self.assertEqual(sorted(states.values()).count("canceled"), 1)
        self.assertEqual(c.get("/readyz").status, 200)

        # Room again: submissions are stored, and so is everything the
        # failed writes missed.
        subprocess.run(["mount", "-o", "remount,size=64m", self.state_dir],
                       check=True)
        after = self.submit(10)
        self.assertEqual(after.status, 201, after)
        accepted.append(after.json()["id"])

        c.controller.send_signal(signal.SIGKILL)
        c.controller.wait()
        c.start_controller(extra=("--state-dir", self.state_dir))
        for job_id in accepted:
            self.assertEqual(c.job(job_id)["state"], "created", job_id)


if __name__ == "__main__":
    unittest.main(verbosity=2)
