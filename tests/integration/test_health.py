"""Health checks for containers: `shoal-controller --healthcheck` asks a
running controller's /readyz; `shoal-worker --healthcheck` reads the file a
worker touches while its controller has it. Neither needs curl.
"""
import os
import signal
import subprocess
import unittest

from harness import CONTROLLER, WORKER, ClusterTest, free_port, wait_for

DEFINITIONS = """
tasks:
  t: {exec_command: /bin/true}
jobs:
  j: {stages: [{task_class: t}]}
"""


def run(argv):
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


class HealthTest(ClusterTest):
    definitions = DEFINITIONS

    def test_controller_healthcheck_follows_readiness(self):
        c = self.make_cluster()
        c.start_controller()
        address = "127.0.0.1:%d" % c.http_port
        ready = run([CONTROLLER, "--healthcheck", "--http", address])
        self.assertEqual((ready.returncode, ready.stdout), (0, "ready\n"))
        c.kill(c.controller)
        gone = run([CONTROLLER, "--healthcheck", "--http", address])
        self.assertEqual((gone.returncode, gone.stdout), (1, "not ready\n"))

    def test_worker_healthcheck_is_true_once_the_controller_has_it(self):
        c = self.make_cluster()
        health = os.path.join(c.tmp, "worker.health")
        before = run([WORKER, "--healthcheck", "--health-file", health])
        self.assertEqual(before.returncode, 1)
        c.start_controller()
        c.start_worker("w1", slots=1, extra=("--health-file", health))
        wait_for(lambda: os.path.exists(health), what="the health file")
        after = run([WORKER, "--healthcheck", "--health-file", health])
        self.assertEqual((after.returncode, after.stdout), (0, "healthy\n"))

    def test_worker_healthcheck_needs_a_file(self):
        out = run([WORKER, "--healthcheck"])
        self.assertEqual(out.returncode, 2)
        self.assertIn("--health-file", out.stderr)


class LogTest(ClusterTest):
    definitions = """
tasks:
  echo:
    input:
      token: {source: parameter}
    exec_command: /bin/echo
    exec_args: ["{token}"]
jobs:
  j:
    input:
      token: {source: http-header, key: Authorization}
    stages: [{task_class: echo}]
"""

    def test_json_logs_are_one_object_per_line_and_hold_no_secret(self):
        c = self.make_cluster()
        c.start_controller(["--log-format", "json"])
        c.start_worker("w1", slots=1, extra=("--log-format", "json"))
        job = c.submit("j", headers={"Authorization": "Bearer s3cr3t-v4lue"})
        self.assertEqual(c.wait_job(job["id"])["state"], "succeeded")
        # The task itself may print it (that is its own log) ...
        log = c.get("/api/v1/jobs/%s/tasks/0/log" % job["id"])
        self.assertIn("s3cr3t-v4lue", log.body)
        # ... the engine's logs never do.
        import json
        for name in ("controller.log", "w1.log"):
            with open(os.path.join(c.tmp, name)) as f:
                lines = [line for line in f if line.strip()]
            self.assertTrue(lines, name)
            for line in lines:
                event = json.loads(line)
                self.assertLessEqual({"time", "level", "component",
                                      "message"}, set(event), line)
                self.assertLessEqual(set(event), {"time", "level",
                                                  "component", "message",
                                                  "job", "task"}, line)
                self.assertNotIn("s3cr3t-v4lue", line, name)

    def events(self, c, name):
        import json
        with open(os.path.join(c.tmp, name)) as f:
            return [json.loads(line) for line in f if line.strip()]

    def test_task_events_carry_job_and_task_fields(self):
        c = self.make_cluster()
        c.start_controller(["--log-format", "json"])     # debug (harness)
        c.start_worker("w1", slots=1, extra=("--log-format", "json"))
        job = c.submit("j", headers={"Authorization": "x"})
        self.assertEqual(c.wait_job(job["id"])["state"], "succeeded")
        c.kill(c.workers["w1"], signal.SIGTERM)   # its log is complete
        worker = [e for e in self.events(c, "w1.log")
                  if e.get("job") == job["id"]]
        started = [e for e in worker if "started" in e["message"]]
        ended = [e for e in worker if "exited (exit code 0)" in e["message"]]
        self.assertEqual(len(started), 1, worker)
        self.assertEqual(len(ended), 1, worker)
        for event in started + ended:
            self.assertEqual((event["task"], event["level"],
                              event["component"]), (0, "info", "worker"))
            self.assertNotIn(job["id"], event["message"])   # a field, once
        controller = [e for e in self.events(c, "controller.log")
                      if e.get("job") == job["id"]]
        dispatched = [e for e in controller if "dispatched" in e["message"]]
        finished = [e for e in controller if "finished" in e["message"]]
        self.assertEqual([e["task"] for e in dispatched + finished], [0, 0],
                         controller)
        self.assertEqual({e["level"] for e in dispatched + finished},
                         {"debug"})
        submitted = [e for e in controller if "submitted" in e["message"]]
        self.assertEqual(len(submitted), 1, controller)
        self.assertNotIn("task", submitted[0])     # about the job alone

    def test_text_logs_put_the_ids_before_the_message(self):
        c = self.make_cluster()
        c.start_controller()
        c.start_worker("w1", slots=1)
        job = c.submit("j", headers={"Authorization": "x"})
        self.assertEqual(c.wait_job(job["id"])["state"], "succeeded")
        c.kill(c.workers["w1"], signal.SIGTERM)
        with open(os.path.join(c.tmp, "w1.log")) as f:
            text = f.read()
        self.assertRegex(text, r"(?m) info  worker: job=%s task=0 attempt 1: "
                         r"started task '/bin/echo' as pid \d+$" % job["id"])

    def test_log_level_filters(self):
        c = self.make_cluster()
        # Flags after the harness's --log-level debug win over it.
        c.start_controller(["--log-format", "json", "--log-level", "warn"])
        c.start_worker("w1", slots=1, extra=("--log-format", "json"))
        c.start_worker("w2", slots=1, extra=("--log-format", "json",
                                             "--log-level", "info"))
        for _ in range(2):
            job = c.submit("j", headers={"Authorization": "x"})
            self.assertEqual(c.wait_job(job["id"])["state"], "succeeded")
        for name in ("w1", "w2"):
            c.kill(c.workers[name], signal.SIGTERM)
        levels = {name: {e["level"] for e in self.events(c, name + ".log")}
                  for name in ("controller", "w1", "w2")}
        self.assertLessEqual(levels["controller"], {"warn", "error"})
        self.assertIn("debug", levels["w1"])
        self.assertIn("info", levels["w2"])
        self.assertNotIn("debug", levels["w2"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
