"""Health checks for containers: `shoal-controller --healthcheck` asks a
running controller's /readyz; `shoal-worker --healthcheck` reads the file a
worker touches while its controller has it. Neither needs curl.
"""
import os
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
                self.assertEqual(set(event), {"time", "level", "component",
                                              "message"}, line)
                self.assertNotIn("s3cr3t-v4lue", line, name)


if __name__ == "__main__":
    unittest.main(verbosity=2)
