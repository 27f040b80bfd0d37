"""The engine end to end: real controller, real workers, real processes.

Each task in these jobs runs tools/act.py, which appends a line to a
marker file per task, so the tests can check that every task ran, ran
exactly once, and ran in stage order.
"""
import os
import signal
import unittest

from harness import ClusterTest, wait_for

TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools")

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
  first:
    input:
      TOOLS: {source: environment}
      MARKERS: {source: environment}
    exec_command: /usr/bin/python3
    exec_args: ["{TOOLS}/act.py", "{MARKERS}", "first", "ok"]
  last:
    input:
      TOOLS: {source: environment}
      MARKERS: {source: environment}
    exec_command: /usr/bin/python3
    exec_args: ["{TOOLS}/act.py", "{MARKERS}", "last", "ok"]
  spawn:
    input:
      TOOLS: {source: environment}
      count: {source: parameter, default: "0"}
    exec_command: /usr/bin/python3
    exec_args: ["{TOOLS}/spawn.py", "{count}"]
  spawn-modes:
    input:
      TOOLS: {source: environment}
      modes: {source: parameter}
    exec_command: /usr/bin/python3
    exec_args: ["{TOOLS}/spawn.py", "--modes", "{modes}"]
  limited:
    input:
      TOOLS: {source: environment}
      MARKERS: {source: environment}
      mode: {source: parameter}
    exec_command: /usr/bin/python3
    exec_args: ["{TOOLS}/act.py", "{MARKERS}", "limited", "{mode}"]
    timeout: 1
    retries: 1
  plant-link:
    input:
      target: {source: parameter}
    exec_command: /bin/sh
    exec_args: ["-c", "echo visible; {target}"]
  missing-command:
    exec_command: no-such-command-shoal-test
jobs:
  three-stages:
    input:
      count: {source: parameter}
    stages:
      - {name: first, task_class: first}
      - {name: middle, task_class: act, spawn_task: spawn}
      - {name: last, task_class: last}
  strict:
    input:
      modes: {source: parameter}
    stages:
      - {name: spread, task_class: act, spawn_task: spawn-modes, job_failed_on_error: true}
      - {name: after, task_class: last}
  tolerant:
    input:
      modes: {source: parameter}
    stages:
      - {name: spread, task_class: act, spawn_task: spawn-modes, job_failed_on_error: false}
      - {name: after, task_class: last}
  retryable:
    input:
      modes: {source: parameter}
    stages:
      - {name: first, task_class: first}
      - {name: middle, task_class: act, spawn_task: spawn-modes}
      - {name: last, task_class: last}
  slow-one:
    input:
      mode: {source: parameter}
    stages:
      - {name: only, task_class: act}
  limited-one:
    input:
      mode: {source: parameter}
    stages:
      - {name: only, task_class: limited}
  planter:
    input:
      target: {source: parameter}
    stages:
      - {name: only, task_class: plant-link}
  not-runnable:
    stages:
      - {name: only, task_class: missing-command}
"""


def read_marker(path):
    """[(event, time_ns, pid)] from a marker file, [] if it is absent."""
    try:
        with open(path) as f:
            return [(e, int(t), int(p)) for e, t, p in
                    (line.split() for line in f if line.strip())]
    except FileNotFoundError:
        return []


class EngineTest(ClusterTest):
    definitions = DEFINITIONS

    def setUp(self):
        self.cluster = self.make_cluster()
        self.markers = os.path.join(self.cluster.tmp, "markers")
        self.env = {"TOOLS": TOOLS, "MARKERS": self.markers}
        self.cluster.start_controller()

    def marker(self, name):
        return read_marker(os.path.join(self.markers, name))

    def test_three_stage_job_with_200_spawned_tasks_runs_each_once(self):
        c = self.cluster
        c.start_worker("w1", slots=2, env=self.env)
        c.start_worker("w2", slots=2, env=self.env)
        job = c.submit("three-stages", {"count": 200})
        done = c.wait_job(job["id"], timeout=240)
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual([s["state"] for s in done["stages"]],
                         ["succeeded"] * 3)
        self.assertEqual(done["stages"][1]["tasks"]["total"], 201)
        self.assertEqual(done["stages"][1]["tasks"]["succeeded"], 201)
        # Every marker exists exactly once: one start, one done.
        def once(name):
            events = self.marker(name)
            self.assertEqual([e for e, _, _ in events], ["start", "done"],
                             name)
            return events
        first = once("first")
        middle = [once("one-%d" % i) for i in range(200)]
        last = once("last")
        # Stage order: no middle task started before the first stage ended,
        # and the last stage started after every middle task ended.
        self.assertGreaterEqual(min(m[0][1] for m in middle), first[1][1])
        self.assertGreaterEqual(last[0][1], max(m[1][1] for m in middle))
        tasks = c.tasks(job["id"])
        self.assertEqual(len(tasks), 1 + 1 + 200 + 1)
        workers = {t["worker"] for t in tasks}
        self.assertEqual(workers, {"w1", "w2"}, "tasks spread over both")
        self.assertTrue(all(t["attempts"] == 1 for t in tasks))
        self.assertTrue(all(t["duration_ms"] >= 0 for t in tasks))
        spawned = [t for t in tasks if t["stage_index"] == 1
                   and t["kind"] == "task"]
        self.assertEqual(sorted(t["params"]["item"] for t in spawned),
                         sorted(str(i) for i in range(200)))

    def test_failure_fails_job_when_policy_is_true(self):
        c = self.cluster
        c.start_worker("w1", slots=2, env=self.env)
        # Task 1 fails once task 0 has started: the cancel then meets a
        # running process, never one still starting up.
        job = c.submit("strict", {"modes": "slow,fail-after:one-0,ok,ok,ok"})
        done = c.wait_job(job["id"])
        self.assertEqual(done["state"], "failed", done)
        self.assertIn("exited with code 1", done["error"])
        spread, after = done["stages"]
        self.assertEqual(spread["state"], "failed")
        self.assertEqual(after["state"], "pending")
        self.assertEqual(spread["tasks"]["failed"], 1)
        self.assertEqual(spread["tasks"]["canceled"], 4)
        # Pending tasks never started.
        for i in (2, 3, 4):
            self.assertEqual(self.marker("one-%d" % i), [], "task %d ran" % i)
        # The running one was stopped: it started, never finished, and its
        # process is gone once the worker has given its slot back.
        slow = self.marker("one-0")
        self.assertEqual([e for e, _, _ in slow], ["start"])
        wait_for(lambda: all(w["busy"] == 0 for w in
                             c.get("/api/v1/workers").json()["workers"]),
                 what="worker to report the canceled task")
        self.assertFalse(os.path.exists("/proc/%d" % slow[0][2]),
                         "canceled task process still runs")
        states = {t["index"]: t["state"] for t in c.tasks(job["id"])
                  if t["kind"] == "task"}
        self.assertEqual(states[0], "canceled")
        self.assertEqual(states[1], "failed")

    def test_failure_is_tolerated_when_policy_is_false(self):
        c = self.cluster
        c.start_worker("w1", slots=2, env=self.env)
        job = c.submit("tolerant", {"modes": "fail,ok,ok"})
        done = c.wait_job(job["id"])
        self.assertEqual(done["state"], "succeeded", done)
        spread, after = done["stages"]
        self.assertEqual(spread["state"], "failed")
        self.assertEqual(spread["tasks"]["failed"], 1)
        self.assertEqual(spread["tasks"]["succeeded"], 3)  # spawn + 2
        self.assertEqual(after["state"], "succeeded")
        failed = [t for t in c.tasks(job["id"]) if t["state"] == "failed"]
        self.assertEqual(len(failed), 1)
        self.assertEqual(failed[0]["exit_code"], 1)
        log = c.get("/api/v1/jobs/%s/tasks/%d/log" % (job["id"], failed[0]["id"]))
        self.assertEqual(log.status, 200)
        self.assertIn("failing on purpose", log.body)

    def test_task_log_serves_byte_ranges(self):
        """A follower asks for the bytes after those it has: the log route
        answers a Range with 206 and those bytes, a range past the end with
        416 naming the log's length, and one it does not take with the
        whole log (RFC 9110 lets a server ignore such a Range)."""
        c = self.cluster
        c.start_worker("w1", slots=2, env=self.env)
        job = c.submit("tolerant", {"modes": "fail"})
        c.wait_job(job["id"])
        failed = [t for t in c.tasks(job["id"]) if t["state"] == "failed"][0]
        path = "/api/v1/jobs/%s/tasks/%d/log" % (job["id"], failed["id"])
        text = "failing on purpose\n"
        size = len(text)

        def get(value):
            return c.get(path, headers={"Range": value})

        whole = c.get(path)
        self.assertEqual((whole.status, whole.body), (200, text))
        self.assertEqual(whole.headers.get("Accept-Ranges"), "bytes")
        for value, first, last in (("bytes=8-", 8, size - 1),
                                   ("bytes=0-6", 0, 6),
                                   ("bytes=-8", size - 8, size - 1),
                                   ("bytes=-1000", 0, size - 1),
                                   ("bytes=3-1000", 3, size - 1),
                                   ("bytes=%d-" % (size - 1), size - 1,
                                    size - 1)):
            part = get(value)
            self.assertEqual(part.status, 206, value)
            self.assertEqual(part.body, text[first:last + 1], value)
            self.assertEqual(part.headers.get("Content-Range"),
                             "bytes %d-%d/%d" % (first, last, size), value)
            self.assertEqual(part.headers.get("Content-Length"),
                             str(last - first + 1), value)
        for value in ("bytes=%d-" % size, "bytes=%d-%d" % (size + 5, size + 9),
                      "bytes=-0"):
            past = get(value)
            self.assertProblem(past, 416, "Range")
            self.assertEqual(past.headers.get("Content-Range"),
                             "bytes */%d" % size, value)
        for value in ("bytes=5-2", "items=0-3", "bytes=0-1,4-5", "bytes=x-",
                      "bytes=", "bytes=-"):
            ignored = get(value)
            self.assertEqual((ignored.status, ignored.body), (200, text), value)

    def test_task_of_killed_worker_completes_on_the_other(self):
        c = self.cluster
        env = dict(self.env, ACT_SLEEP="2")
        c.start_worker("w1", slots=1, env=env)
        c.start_worker("w2", slots=1, env=env)
        job = c.submit("slow-one", {"mode": "slow"})
        wait_for(lambda: self.marker("one-0"), what="the task to start")
        first_worker = c.tasks(job["id"])[0]["worker"]
        c.kill(c.workers[first_worker], signal.SIGKILL)
        done = c.wait_job(job["id"])
        self.assertEqual(done["state"], "succeeded", done)
        task = c.tasks(job["id"])[0]
        self.assertEqual(task["attempts"], 2)
        self.assertNotEqual(task["worker"], first_worker)
        events = [e for e, _, _ in self.marker("one-0")]
        self.assertEqual(events.count("done"), 1, events)
        self.assertNotIn(first_worker, c.worker_names())

    def test_cancel_leaves_no_task_process_running(self):
        c = self.cluster
        c.start_worker("w1", slots=50, env=self.env)
        c.start_worker("w2", slots=50, env=self.env)
        job = c.submit("strict", {"modes": ",".join(["slow"] * 100)})
        names = ["one-%d" % i for i in range(100)]
        wait_for(lambda: all(self.marker(n) for n in names), timeout=120,
                 what="100 tasks to start")
        resp = c.post("/api/v1/jobs/%s/cancel" % job["id"])
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.json()["state"], "canceled")
        self.assertEqual(resp.json()["stages"][0]["tasks"]["canceled"], 100)
        self.assertProblem(c.post("/api/v1/jobs/%s/cancel" % job["id"]), 409,
                           "state")
        wait_for(lambda: all(w["busy"] == 0 for w in
                             c.get("/api/v1/workers").json()["workers"]),
                 timeout=60, what="workers to report every canceled task")
        pids = [self.marker(n)[0][2] for n in names]
        alive = [p for p in pids if os.path.exists("/proc/%d" % p)]
        self.assertEqual(alive, [], "task processes left after cancel")
        self.assertFalse(any(e == "done" for n in names
                             for e, _, _ in self.marker(n)))
        self.assertEqual(c.job(job["id"])["state"], "canceled")

    def test_retry_runs_the_failed_stage_again_keeping_earlier_stages(self):
        c = self.cluster
        c.start_worker("w1", slots=2, env=self.env)
        job = c.submit("retryable", {"modes": "ok,fail-once"})
        failed = c.wait_job(job["id"])
        self.assertEqual(failed["state"], "failed", failed)
        self.assertProblem(c.post("/api/v1/jobs/nosuchjob/retry"), 404, "id")
        resp = c.post("/api/v1/jobs/%s/retry" % job["id"])
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.json()["state"], "running")
        done = c.wait_job(job["id"])
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(done["retries"], 1)
        self.assertIsNone(done["error"])
        self.assertEqual([e for e, _, _ in self.marker("first")],
                         ["start", "done"], "the first stage ran once")
        self.assertEqual([e for e, _, _ in self.marker("one-1")],
                         ["start", "start", "done"])
        self.assertEqual([e for e, _, _ in self.marker("last")],
                         ["start", "done"])
        self.assertProblem(c.post("/api/v1/jobs/%s/retry" % job["id"]), 409,
                           "state")

    def test_sigterm_drains_running_tasks_before_the_worker_exits(self):
        c = self.cluster
        env = dict(self.env, ACT_SLEEP="3")
        first = c.start_worker("w1", slots=1, env=env)
        job = c.submit("slow-one", {"mode": "slow"})
        wait_for(lambda: self.marker("one-0"), what="the task to start")
        c.send_signal(first, signal.SIGTERM)
        wait_for(lambda: [w for w in c.get("/api/v1/workers").json()["workers"]
                          if w["draining"]], what="the worker to drain")
        # A draining worker gets no new task: this one waits for w2.
        other = c.submit("slow-one", {"mode": "ok"})
        self.assertEqual(first.wait(timeout=60), 0)
        done = c.wait_job(job["id"])
        self.assertEqual(done["state"], "succeeded", done)
        task = c.tasks(job["id"])[0]
        self.assertEqual((task["worker"], task["attempts"]), ("w1", 1))
        self.assertEqual(c.job(other["id"])["state"], "running")
        c.start_worker("w2", slots=1, env=env)
        self.assertEqual(c.wait_job(other["id"])["state"], "succeeded")
        self.assertEqual(c.tasks(other["id"])[0]["worker"], "w2")

    def test_drain_timeout_hands_unfinished_tasks_back(self):
        c = self.cluster
        first = c.start_worker("w1", slots=1, env=self.env,
                               extra=("--drain-timeout", "1"))
        job = c.submit("slow-one", {"mode": "slow"})
        wait_for(lambda: self.marker("one-0"), what="the task to start")
        env = dict(self.env, ACT_SLEEP="0")
        c.start_worker("w2", slots=1, env=env)
        c.send_signal(first, signal.SIGTERM)
        self.assertEqual(first.wait(timeout=60), 0)
        done = c.wait_job(job["id"])
        self.assertEqual(done["state"], "succeeded", done)
        task = c.tasks(job["id"])[0]
        self.assertEqual((task["worker"], task["attempts"]), ("w2", 2))
        events = [e for e, _, _ in self.marker("one-0")]
        self.assertEqual(events, ["start", "start", "done"])

    def test_task_past_its_timeout_is_stopped_and_fails_after_retries(self):
        c = self.cluster
        c.start_worker("w1", slots=1, env=self.env)   # ACT_SLEEP: 30 s
        job = c.submit("limited-one", {"mode": "slow"})
        done = c.wait_job(job["id"])
        self.assertEqual(done["state"], "failed", done)
        self.assertIn("timed out after 1000 ms", done["error"])
        task = c.tasks(job["id"])[0]
        self.assertEqual((task["attempts"], task["failures"]), (2, 1))
        runs = self.marker("limited")
        self.assertEqual([e for e, _, _ in runs], ["start", "start"])
        for _, _, pid in runs:
            self.assertFalse(os.path.exists("/proc/%d" % pid),
                             "timed-out task still runs")

    def test_failed_task_is_retried_and_can_succeed(self):
        c = self.cluster
        c.start_worker("w1", slots=1, env=self.env)
        job = c.submit("limited-one", {"mode": "fail-once"})
        done = c.wait_job(job["id"])
        self.assertEqual(done["state"], "succeeded", done)
        task = c.tasks(job["id"])[0]
        self.assertEqual((task["attempts"], task["failures"]), (2, 1))
        self.assertEqual([e for e, _, _ in self.marker("limited")],
                         ["start", "start", "done"])

    def test_task_log_route_follows_no_link_a_task_planted(self):
        c = self.cluster
        c.start_worker("w1", slots=1, env=self.env)
        plain = c.submit("planter", {"target": "true"})
        c.wait_job(plain["id"])
        log = c.get("/api/v1/jobs/%s/tasks/0/log" % plain["id"])
        self.assertEqual((log.status, log.body), (200, "visible\n"))
        plants = {
            "file": "rm logs/0.log && ln -s /etc/passwd logs/0.log",
            "dir": "mkdir -p ../../outside && "
                   "echo SECRET-OUTSIDE > ../../outside/0.log && "
                   "mv logs logs.old && ln -s ../../outside logs",
        }
        for what, command in plants.items():
            job = c.submit("planter", {"target": command})
            done = c.wait_job(job["id"])
            self.assertEqual(done["state"], "succeeded", (what, done))
            log = c.get("/api/v1/jobs/%s/tasks/0/log" % job["id"])
            self.assertProblem(log, 404, "task_id")
            self.assertNotIn("root:", log.body, what)
            self.assertNotIn("SECRET-OUTSIDE", log.body, what)

    def test_command_not_found_fails_the_task_with_the_reason(self):
        c = self.cluster
        c.start_worker("w1", slots=1, env=self.env)
        job = c.submit("not-runnable")
        done = c.wait_job(job["id"])
        self.assertEqual(done["state"], "failed")
        self.assertIn("no-such-command-shoal-test", done["error"])
        task = c.tasks(job["id"])[0]
        self.assertIn("No such file or directory", task["error"])

    def test_missing_environment_input_fails_the_task_naming_it(self):
        c = self.cluster
        c.start_worker("w1", slots=1, env={"MARKERS": self.markers})
        job = c.submit("slow-one", {"mode": "ok"})
        done = c.wait_job(job["id"])
        self.assertEqual(done["state"], "failed")
        self.assertIn("TOOLS", c.tasks(job["id"])[0]["error"])

    def test_job_waits_for_a_worker(self):
        c = self.cluster
        job = c.submit("slow-one", {"mode": "ok"})
        self.assertEqual(c.job(job["id"])["state"], "running")
        c.start_worker("late", slots=1, env=self.env)
        self.assertEqual(c.wait_job(job["id"])["state"], "succeeded")


if __name__ == "__main__":
    unittest.main(verbosity=2)
