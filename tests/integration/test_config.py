"""Configuration files: every option of shoal-controller and shoal-worker
from a flag, an environment variable (SHOAL_...) or a YAML file (--config
or SHOAL_CONFIG), in that order of precedence; errors name
file:line:column and exit 2 like a bad flag.
"""
import os
import signal
import subprocess
import tempfile
import time
import unittest

from harness import CONTROLLER, WORKER, ClusterTest, free_port, wait_for

DEFINITIONS = """
tasks:
  t: {exec_command: /bin/true}
jobs:
  j: {stages: [{task_class: t}]}
"""

# Variables a caller's environment might set; each test sets its own.
CLEAN = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}


def run(argv, env=None):
    full = dict(CLEAN)
    full.update(env or {})
    return subprocess.run(argv, capture_output=True, text=True, timeout=30,
                          env=full)


class PrecedenceTest(unittest.TestCase):
    """Which source wins, seen through --check (it prints the definitions
    file it read) and the worker's --healthcheck (it reads --health-file)."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="shoal-config-")
        self.addCleanup(self.tmp.cleanup)

    def path(self, name, text=None):
        p = os.path.join(self.tmp.name, name)
        if text is not None:
            with open(p, "w") as f:
                f.write(text)
        return p

    def check(self, *flags, env=None):
        out = run([CONTROLLER, "--check", *flags], env)
        self.assertEqual(out.returncode, 0, out)
        return out.stdout.split(":")[0]

    def test_flag_overrides_env_which_overrides_the_file(self):
        defs = {n: self.path(n + ".yaml", DEFINITIONS)
                for n in ("file", "env", "flag")}
        config = self.path("controller.yaml",
                           "definitions: %s\n" % defs["file"])
        env = {"SHOAL_DEFINITIONS": defs["env"]}
        self.assertEqual(self.check("--config", config), defs["file"])
        self.assertEqual(self.check("--config", config, env=env), defs["env"])
        self.assertEqual(self.check("--config", config, "-d", defs["flag"],
                                    env=env), defs["flag"])

    def test_shoal_config_names_the_file(self):
        defs = self.path("d.yaml", DEFINITIONS)
        config = self.path("c.yaml", "definitions: %s\n" % defs)
        self.assertEqual(self.check(env={"SHOAL_CONFIG": config}), defs)

    def test_worker_reads_its_file_under_env_and_flags(self):
        fresh = self.path("fresh.health", "")
        stale = self.path("stale.health", "")
        old = time.time() - 3600
        os.utime(stale, (old, old))
        config = self.path("worker.yaml", "health-file: %s\n" % fresh)

        def health(*flags, env=None):
            return run([WORKER, "--config", config, "--healthcheck", *flags],
                       env).stdout

        self.assertEqual(health(), "healthy\n")
        self.assertEqual(health(env={"SHOAL_HEALTH_FILE": stale}),
                         "unhealthy\n")
        self.assertEqual(health("--health-file", fresh,
                                env={"SHOAL_HEALTH_FILE": stale}),
                         "healthy\n")

    def assert_usage_error(self, argv, *expected, env=None):
        out = run(argv, env)
        self.assertEqual(out.returncode, 2, out)
        self.assertEqual(out.stdout, "")
        for text in expected:
            self.assertIn(text, out.stderr)
        self.assertIn("--help", out.stderr)

    def test_errors_name_file_line_column_and_key(self):
        config = self.path("bad.yaml", "slots: 2\n\nnope: 1\n")
        self.assert_usage_error([WORKER, "--config", config],
                                "%s:3:1: unknown key 'nope'" % config)
        config = self.path("type.yaml", "# slots\nslots: [1, 2]\n")
        self.assert_usage_error([WORKER, "--config", config],
                                "%s:2:8: slots must be an integer, not a list"
                                % config)
        config = self.path("value.yaml", "http-threads: 0\n")
        self.assert_usage_error([CONTROLLER, "--config", config, "--check"],
                                "%s:1:15: http-threads must be an integer "
                                "from 1 to 1024, not '0'" % config)
        config = self.path("level.yaml", "log-level: loud\n")
        self.assert_usage_error([WORKER], "%s:1:12: log-level must be error, "
                                "warn, info or debug" % config,
                                env={"SHOAL_CONFIG": config})
        config = self.path("action.yaml", "check: true\n")
        self.assert_usage_error([CONTROLLER, "--config", config],
                                "%s:1:1: unknown key 'check'" % config)

    def test_a_named_file_must_exist(self):
        missing = self.path("missing.yaml")
        self.assert_usage_error([CONTROLLER, "--config", missing],
                                "cannot read configuration file %s" % missing)
        self.assert_usage_error([WORKER], "cannot read configuration file",
                                env={"SHOAL_CONFIG": missing})

    def test_bad_environment_values_are_usage_errors(self):
        self.assert_usage_error([WORKER], "SHOAL_SLOTS must be an integer",
                                env={"SHOAL_SLOTS": "many"})
        self.assert_usage_error([WORKER], "SHOAL_PLAINTEXT must be true or "
                                "false", env={"SHOAL_PLAINTEXT": "perhaps"})

    def test_help_and_version_follow_gnu(self):
        for binary in (CONTROLLER, WORKER):
            out = run([binary, "--help"])
            self.assertEqual((out.returncode, out.stderr), (0, ""))
            self.assertTrue(out.stdout.startswith("Usage: "), out.stdout)
            self.assertIn("--config FILE", out.stdout)
            self.assertIn("SHOAL_CONFIG", out.stdout)
            version = run([binary, "--version"])
            self.assertEqual(version.returncode, 0)
            self.assertRegex(version.stdout, r"^shoal-\w+ \d+\.\d+\.\d+\n$")
            bad = run([binary, "--no-such-option"])
            self.assertEqual((bad.returncode, bad.stdout), (2, ""))
            self.assertIn("unrecognized option '--no-such-option'",
                          bad.stderr)
            self.assertIn("Try '%s --help'" % os.path.basename(binary),
                          bad.stderr)


class ConfigClusterTest(ClusterTest):
    """A controller and a worker that take everything from their files."""
    definitions = DEFINITIONS

    def test_a_job_runs_with_options_from_files_only(self):
        c = self.make_cluster()
        controller_yaml = os.path.join(c.tmp, "controller.yaml")
        with open(controller_yaml, "w") as f:
            f.write("# shoal-controller\n"
                    "definitions: %s\n"
                    "data-dir: %s\n"
                    "http: 127.0.0.1:%d\n"
                    "bind: tcp://127.0.0.1:%d\n"
                    "http-threads: 4\n"
                    "ephemeral: true\n"
                    "log-format: json\n"
                    "log-level: debug\n"
                    % (c.defs_path, c.data_dir, c.http_port, c.zmq_port))
        worker_yaml = os.path.join(c.tmp, "worker.yaml")
        with open(worker_yaml, "w") as f:
            f.write("connect: tcp://127.0.0.1:%d\n"
                    "data-dir: %s\n"
                    "slots: 3\n"
                    "name: from-file\n"
                    "drain-timeout: 5\n"
                    "log-format: json\n"
                    % (c.zmq_port, c.data_dir))
        c.controller = c._spawn("controller", [CONTROLLER, "--config",
                                               controller_yaml], env=CLEAN)
        wait_for(c._ready, what="controller /readyz")
        c.workers["from-file"] = c._spawn(
            "from-file", [WORKER], env=dict(CLEAN, SHOAL_CONFIG=worker_yaml))
        wait_for(lambda: "from-file" in c.worker_names(),
                 what="the worker named in its file to join")
        workers = c.get("/api/v1/workers").json()["workers"]
        self.assertEqual([w["slots"] for w in workers], [3])
        job = c.submit("j")
        self.assertEqual(c.wait_job(job["id"])["state"], "succeeded")
        # The file said json for both.
        c.kill(c.workers["from-file"], signal.SIGTERM)
        import json
        for name in ("controller.log", "from-file.log"):
            with open(os.path.join(c.tmp, name)) as f:
                for line in f:
                    json.loads(line)

    def test_flag_and_env_override_the_file_in_a_live_worker(self):
        c = self.make_cluster()
        c.start_controller()
        worker_yaml = os.path.join(c.tmp, "worker.yaml")
        with open(worker_yaml, "w") as f:
            f.write("connect: tcp://127.0.0.1:%d\nslots: 1\nname: file\n"
                    "data-dir: %s\n" % (c.zmq_port, c.data_dir))
        c.workers["flag"] = c._spawn(
            "flag", [WORKER, "--config", worker_yaml, "--name", "flag"],
            env=dict(CLEAN, SHOAL_WORKER_NAME="env", SHOAL_SLOTS="2"))
        c.workers["env"] = c._spawn(
            "env", [WORKER, "--config", worker_yaml],
            env=dict(CLEAN, SHOAL_WORKER_NAME="env"))
        wait_for(lambda: {"flag", "env"} <= set(c.worker_names()),
                 what="both workers to join")
        slots = {w["id"]: w["slots"]
                 for w in c.get("/api/v1/workers").json()["workers"]}
        self.assertEqual(slots, {"flag": 2, "env": 1})


class CliConfigTest(ClusterTest):
    """`shoal` reads url, token and token-file from ~/.config/shoal/cli.yaml
    (or --config, or SHOAL_CLI_CONFIG) under SHOAL_URL/SHOAL_TOKEN and
    flags."""
    definitions = DEFINITIONS

    def setUp(self):
        self.c = self.make_cluster()
        token_file = os.path.join(self.c.tmp, "api-token")
        with open(token_file, "w") as f:
            f.write("s3cr3t\n")
        self.c.start_controller(["--api-token-file", token_file])
        self.home = os.path.join(self.c.tmp, "home")
        os.makedirs(os.path.join(self.home, ".config", "shoal"))
        self.url = "http://127.0.0.1:%d" % self.c.http_port
        self.dead = "http://127.0.0.1:%d" % free_port()

    def write(self, text, path=None):
        path = path or os.path.join(self.home, ".config", "shoal", "cli.yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def shoal(self, *argv, env=None):
        full = {"HOME": self.home}
        full.update(env or {})
        return run([os.path.join(os.path.dirname(CONTROLLER), "shoal"),
                    "workers", "--json", *argv], full)

    def test_default_file_gives_url_and_token(self):
        self.assertEqual(self.shoal().returncode, 4)      # no file: refused
        self.write("url: %s\ntoken: s3cr3t\n" % self.url)
        out = self.shoal()
        self.assertEqual(out.returncode, 0, out)
        self.assertIn('"workers"', out.stdout)
        token_file = os.path.join(self.c.tmp, "cli-token")
        self.write("s3cr3t\n", token_file)
        self.write("url: %s\ntoken-file: %s\n" % (self.url, token_file))
        self.assertEqual(self.shoal().returncode, 0)

    def test_flag_over_env_over_file(self):
        self.write("url: %s\ntoken: wrong\n" % self.dead)
        env = {"SHOAL_URL": self.url, "SHOAL_TOKEN": "s3cr3t"}
        self.assertEqual(self.shoal(env=env).returncode, 0)
        self.assertEqual(self.shoal("--url", self.dead, env=env).returncode, 4)
        self.assertEqual(self.shoal("--token", "wrong", env=env).returncode, 4)
        self.assertEqual(self.shoal("--url", self.url, "--token", "s3cr3t")
                         .returncode, 0)

    def test_named_file_and_its_errors(self):
        named = self.write("url: %s\ntoken: s3cr3t\n" % self.url,
                           os.path.join(self.c.tmp, "named.yaml"))
        self.assertEqual(self.shoal("--config", named).returncode, 0)
        self.assertEqual(self.shoal(env={"SHOAL_CLI_CONFIG": named})
                         .returncode, 0)
        bad = self.write("url: %s\nhttp: x\n" % self.url,
                         os.path.join(self.c.tmp, "bad.yaml"))
        out = self.shoal("--config", bad)
        self.assertEqual(out.returncode, 2, out)
        self.assertIn("%s:2:1: unknown key 'http'" % bad, out.stderr)
        out = self.shoal("--config", os.path.join(self.c.tmp, "none.yaml"))
        self.assertEqual(out.returncode, 2, out)
        self.assertIn("cannot read configuration file", out.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
