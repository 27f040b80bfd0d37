"""CURVE between controller and workers: only workers whose public key is
in the controller's authorized directory get work; adding a key admits a
worker without a restart; plain text beyond loopback needs --plaintext.
"""
import os
import shutil
import subprocess
import unittest

from harness import (BUILD_DIR, CONTROLLER, WORKER, ClusterTest, free_port,
                     wait_for)

KEYGEN = os.path.join(BUILD_DIR, "shoal-keygen")
TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools")

DEFINITIONS = """
tasks:
  act:
    input:
      TOOLS: {source: environment}
      MARKERS: {source: environment}
      item: {source: parameter, default: "0"}
    exec_command: /usr/bin/python3
    exec_args: ["{TOOLS}/act.py", "{MARKERS}", "item-{item}", "ok"]
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
      - {name: spread, task_class: act, spawn_task: spawn}
"""


class CurveTest(ClusterTest):
    definitions = DEFINITIONS

    def keygen(self, directory, name):
        out = subprocess.run([KEYGEN, "--dir", directory, name],
                             capture_output=True, text=True, check=True)
        self.assertIn("public key", out.stdout)
        return os.path.join(directory, name + ".key")

    def setUp(self):
        c = self.cluster = self.make_cluster()
        self.keys = os.path.join(c.tmp, "keys")
        self.clients = os.path.join(c.tmp, "clients")
        os.makedirs(self.clients)
        self.controller_key = self.keygen(self.keys, "controller")
        self.good_key = self.keygen(self.keys, "good")
        self.stranger_key = self.keygen(self.keys, "stranger")
        shutil.copy(self.good_key, self.clients)
        self.env = {"TOOLS": TOOLS, "MARKERS": os.path.join(c.tmp, "markers")}
        c.start_controller(["--curve-secret", self.controller_key,
                            "--curve-clients", self.clients])

    def curve_args(self, key):
        return ("--curve-secret", key, "--curve-server", self.controller_key)

    def test_only_authorized_workers_get_tasks(self):
        c = self.cluster
        c.start_worker("stranger", slots=2, env=self.env, wait=False,
                       extra=self.curve_args(self.stranger_key))
        c.start_worker("plain", slots=2, env=self.env, wait=False)
        job = c.submit("fan", {"count": 6})
        c.start_worker("good", slots=2, env=self.env,
                       extra=self.curve_args(self.good_key))
        done = c.wait_job(job["id"])
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual({t["worker"] for t in c.tasks(job["id"])}, {"good"})
        self.assertEqual(c.worker_names(), ["good"])

    def test_adding_a_key_admits_a_worker_without_a_restart(self):
        c = self.cluster
        c.start_worker("stranger", slots=2, env=self.env, wait=False,
                       extra=self.curve_args(self.stranger_key))
        c.start_worker("good", slots=2, env=self.env,
                       extra=self.curve_args(self.good_key))
        self.assertNotIn("stranger", c.worker_names())
        shutil.copy(self.stranger_key, self.clients)
        wait_for(lambda: "stranger" in c.worker_names(), timeout=60,
                 what="the newly authorized worker to join")


class PlaintextTest(unittest.TestCase):
    def run_binary(self, argv):
        return subprocess.run(argv, capture_output=True, text=True, timeout=30)

    def test_controller_beyond_loopback_needs_curve_or_plaintext(self):
        out = self.run_binary([CONTROLLER, "--definitions", "/dev/null",
                               "--bind", "tcp://0.0.0.0:%d" % free_port()])
        self.assertEqual(out.returncode, 2, out)
        self.assertIn("--plaintext", out.stderr)
        self.assertIn("--curve-secret", out.stderr)

    def test_worker_beyond_loopback_needs_curve_or_plaintext(self):
        out = self.run_binary([WORKER, "--connect", "tcp://10.255.0.1:5555"])
        self.assertEqual(out.returncode, 2, out)
        self.assertIn("--plaintext", out.stderr)

    def test_curve_options_go_in_pairs(self):
        out = self.run_binary([WORKER, "--curve-secret", "x.key"])
        self.assertEqual(out.returncode, 2, out)
        out = self.run_binary([CONTROLLER, "--definitions", "/dev/null",
                               "--curve-secret", "x.key"])
        self.assertEqual(out.returncode, 2, out)

    def test_keygen_refuses_to_overwrite(self):
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            first = self.run_binary([KEYGEN, "--dir", d, "k"])
            self.assertEqual(first.returncode, 0, first)
            mode = os.stat(os.path.join(d, "k.key_secret")).st_mode & 0o777
            self.assertEqual(mode, 0o600)
            again = self.run_binary([KEYGEN, "--dir", d, "k"])
            self.assertEqual(again.returncode, 1, again)
            self.assertIn("exists", again.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
