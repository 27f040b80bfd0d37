"""GET /metrics of a live controller: the Prometheus text format, parsed
strictly here and linted by `promtool check metrics`, with the figures of
the jobs the test ran.

promtool comes from Debian's prometheus package, unpacked and not installed
(installing it starts a server): scripts/test.sh runs shoal_fetch_promtool
from scripts/deps.sh, which puts it in <build>/tools/prometheus/usr/bin.
SHOAL_PROMTOOL names another one; else `promtool` on PATH is used. Without
any, the lint is skipped, unless SHOAL_REQUIRE_TOOLS=1 (set by
scripts/test.sh), where it fails.
"""
import os
import re
import shutil
import subprocess
import time
import unittest

from harness import BUILD_DIR, ClusterTest

TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools")

DEFINITIONS = """
tasks:
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
      modes: {source: parameter}
    exec_command: /usr/bin/python3
    exec_args: ["{TOOLS}/spawn.py", "--modes", "{modes}"]
jobs:
  fan:
    input:
      modes: {source: parameter}
    stages:
      - {name: spread, task_class: act, spawn_task: spawn, job_failed_on_error: false}
"""

PROMTOOL_IN_BUILD = os.path.join(BUILD_DIR, "tools", "prometheus", "usr", "bin",
                                 "promtool")


def find_promtool():
    """The promtool to lint with, or None."""
    for candidate in (os.environ.get("SHOAL_PROMTOOL"), PROMTOOL_IN_BUILD,
                      shutil.which("promtool")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """{name: {"type": t, "samples": [(labels dict, value)]}}, strictly."""
    families, current = {}, None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert name not in families, "family %s twice" % name
            families[name] = {"type": kind, "samples": []}
            current = name
            continue
        match = SAMPLE.match(line)
        assert match, "not a sample line: %r" % line
        name, labels = match.group(1), dict(LABEL.findall(match.group(3) or ""))
        base = re.sub(r"_(bucket|sum|count)$", "", name) \
            if families.get(current, {}).get("type") == "histogram" else name
        assert base == current, "%s outside its family %s" % (name, current)
        families[current]["samples"].append((name, labels,
                                             float(match.group(4))))
    return families


class MetricsTest(ClusterTest):
    definitions = DEFINITIONS

    def test_metrics_describe_what_ran_in_prometheus_format(self):
        c = self.make_cluster()
        c.start_controller()
        env = {"TOOLS": TOOLS, "MARKERS": os.path.join(c.tmp, "markers")}
        c.start_worker("w1", slots=2, env=env)
        job = c.submit("fan", {"modes": "ok,ok,fail"})
        self.assertEqual(c.wait_job(job["id"])["state"], "succeeded")
        resp = c.get("/metrics")
        self.assertEqual(resp.status, 200)
        self.assertTrue(resp.content_type.startswith("text/plain"), resp)
        self.assertNotIn(job["id"], resp.body, "job ids never go in labels")
        families = parse(resp.body)

        def value(name, **labels):
            family = name if name in families else \
                re.sub(r"_(bucket|sum|count)$", "", name)
            for sample, got, number in families[family]["samples"]:
                if sample == name and all(got.get(k) == v
                                          for k, v in labels.items()):
                    return number
            self.fail("no %s%s" % (name, labels))

        self.assertEqual(value("shoal_jobs_submitted_total"), 1)
        self.assertEqual(value("shoal_jobs_finished_total",
                               state="succeeded"), 1)
        self.assertEqual(value("shoal_tasks_finished_total",
                               state="succeeded"), 3)   # spawn + 2
        self.assertEqual(value("shoal_tasks_finished_total",
                               state="failed"), 1)
        self.assertEqual(value("shoal_workers_connected"), 1)
        self.assertEqual(value("shoal_worker_slots"), 2)
        self.assertEqual(value("shoal_queue_depth"), 0)
        self.assertEqual(value("shoal_tasks_running"), 0)
        self.assertEqual(value("shoal_jobs_active"), 0)
        self.assertEqual(families["shoal_store_waiting_rows"]["type"],
                         "gauge")
        # The writer catches up with the finished job: the gauge drains.
        deadline = time.monotonic() + 30
        while value("shoal_store_waiting_rows") != 0:
            self.assertLess(time.monotonic(), deadline,
                            "the store's writer never caught up")
            time.sleep(0.05)
            families = parse(c.get("/metrics").body)
        # Every task and the job reached the disk in their final state at
        # least; what a later row replaced in the same transaction is
        # counted apart (how much depends on timing).
        self.assertGreaterEqual(value("shoal_store_rows_written_total"), 5)
        self.assertGreaterEqual(value("shoal_store_rows_replaced_total"), 0)
        # One job writes a few pages: no checkpoint yet.
        self.assertEqual(value("shoal_store_checkpoints_total"), 0)
        for name in ("shoal_store_rows_written_total",
                     "shoal_store_rows_replaced_total",
                     "shoal_store_checkpoints_total"):
            self.assertEqual(families[name]["type"], "counter")
        self.assertEqual(value("shoal_http_requests_total", method="POST",
                               route="/api/v1/jobs", code="201"), 1)
        self.assertEqual(value("shoal_build_info", version="0.1.0"), 1)
        # The wire, both ways: one HELLO and its WELCOME, a TASK and a
        # RESULT for each of the 4 attempts (heartbeats depend on time).
        for direction, command, count in (("received", "HELLO", 1),
                                          ("sent", "WELCOME", 1),
                                          ("sent", "TASK", 4),
                                          ("received", "RESULT", 4)):
            self.assertEqual(value("shoal_worker_messages_total",
                                   direction=direction, command=command),
                             count, (direction, command))
        self.assertEqual(families["shoal_worker_messages_total"]["type"],
                         "counter")
        # One worker: the least period, 1 s by default.
        self.assertEqual(value("shoal_heartbeat_period_seconds"), 1)
        self.assertEqual(value("shoal_http_requests_total", method="GET",
                               route="/api/v1/jobs/:id", code="200"),
                         value("shoal_http_requests_total", method="GET",
                               route="/api/v1/jobs/:id", code="200"))
        for name in ("shoal_task_duration_seconds",
                     "shoal_task_queue_wait_seconds"):
            self.assertEqual(families[name]["type"], "histogram")
            buckets = [(s[1]["le"], s[2]) for s in families[name]["samples"]
                       if s[0] == name + "_bucket"]
            counts = [n for _, n in buckets]
            self.assertEqual(counts, sorted(counts), "buckets cumulative")
            self.assertEqual(buckets[-1][0], "+Inf")
            self.assertEqual(buckets[-1][1], value(name + "_count"))
            self.assertEqual(value(name + "_count"), 4)
        for family, info in families.items():
            if info["type"] == "counter":
                self.assertTrue(family.endswith("_total"), family)
            self.assertTrue(family.startswith("shoal_"), family)
        self.promtool_accepts(resp.body)

    def promtool(self):
        tool = find_promtool()
        if tool is None:
            why = ("promtool not found (SHOAL_PROMTOOL, %s, PATH): run "
                   "scripts/test.sh, or shoal_fetch_promtool from "
                   "scripts/deps.sh" % PROMTOOL_IN_BUILD)
            if os.environ.get("SHOAL_REQUIRE_TOOLS") == "1":
                self.fail(why)
            self.skipTest(why)
        return tool

    def lint(self, text):
        """promtool's verdict: (exit status, what it printed)."""
        check = subprocess.run([self.promtool(), "check", "metrics"],
                               input=text, capture_output=True, text=True,
                               timeout=60)
        return check.returncode, (check.stdout + check.stderr).strip()

    def promtool_accepts(self, text):
        code, said = self.lint(text)
        self.assertEqual((code, said), (0, ""),
                         "promtool check metrics:\n%s\n---\n%s" % (said, text))

    def test_promtool_lints_a_fresh_controller_and_catches_bad_names(self):
        # promtool really lints: a counter without _total is reported.
        code, said = self.lint("# HELP shoal_bad A counter.\n"
                               "# TYPE shoal_bad counter\nshoal_bad 1\n")
        self.assertNotEqual((code, said), (0, ""))
        self.assertIn("_total", said)
        # Before any job: no labelled sample yet, empty histograms.
        c = self.make_cluster()
        c.start_controller()
        resp = c.get("/metrics")
        self.assertEqual(resp.status, 200)
        self.promtool_accepts(resp.body)

    def test_the_store_writer_thread_has_its_own_name(self):
        # So that top -H, perf and scripts/bench.sh tell it from the loop.
        c = self.make_cluster()
        c.start_controller()
        root = "/proc/%d/task" % c.controller.pid
        names = set()
        for tid in os.listdir(root):
            with open(os.path.join(root, tid, "comm")) as f:
                names.add(f.read().strip())
        self.assertIn("shoal-writer", names)
        self.assertIn("shoal-controlle", names)   # the loop: the main thread

    def test_metrics_need_no_token(self):
        c = self.make_cluster()
        token = os.path.join(c.tmp, "token")
        with open(token, "w") as f:
            f.write("t0ken-t0ken-t0ken\n")
        c.start_controller(["--api-token-file", token])
        self.assertEqual(c.get("/metrics").status, 200)


if __name__ == "__main__":
    unittest.main(verbosity=2)
