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


if __name__ == "__main__":
    unittest.main(verbosity=2)
