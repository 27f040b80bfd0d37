"""The benchmark tooling works: scripts/bench.sh at its tiny scale writes
well-formed JSON with every figure, and shoal-loadgen's simulated workers
load the failure and loss paths. No assertion here is about speed: the
figures only have to exist and be positive.
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

LOADGEN = os.path.join(harness.BUILD_DIR, "shoal-loadgen")
BENCH = os.path.join(harness.SOURCE_DIR, "scripts", "bench.sh")

FIGURES = (
    "e2e_shoal_s", "e2e_xargs_s", "e2e_ratio_vs_xargs",
    "ctl_tasks_per_s", "ctl_dispatch_p99_ms_at_peak",
    "ctl_transition_p99_ms_at_peak", "ctl_peak_rss_mib",
    "ctl_store_off_tasks_per_s",
    "ctl_store_off_peak_rss_mib",
    "half_tasks_per_s", "half_dispatch_p50_ms", "half_dispatch_p99_ms",
    "half_dispatch_max_ms", "half_transition_p50_ms",
    "half_transition_p99_ms", "half_transition_max_ms",
    "baseline_tasks_per_s", "baseline_dispatch_p50_ms",
    "baseline_dispatch_p99_ms", "baseline_dispatch_max_ms",
    "baseline_transition_p99_ms", "half_dispatch_p99_vs_baseline",
    "half_store_off_dispatch_p99_vs_baseline",
    "half_transition_p99_vs_baseline",
    "baseline_peak_tasks_per_s", "ctl_store_off_vs_baseline_peak",
    "baseline_rest_p50_ms", "baseline_rest_p99_ms",
    "rest_steady_p99_vs_baseline",
    "fanout_s", "fanout_bytes_per_pending_task", "fanout_peak_bytes_per_task",
    "idle_workers_rss_mib", "idle_workers_bytes_per_worker",
    "idle_heartbeats_received_per_s", "idle_heartbeats_sent_per_s",
    "light_workers", "light_tasks_per_s", "light_dispatch_p50_ms",
    "light_dispatch_p99_ms", "light_dispatch_max_ms",
    "light_transition_p99_ms",
    "rest_max_jobs_per_s", "rest_steady_jobs_per_s", "rest_steady_p50_ms",
    "rest_steady_p99_ms", "rest_max_jobs_per_s_quickack",
    "rest_steady_p99_ms_quickack",
    "idle_controller_rss_mib", "idle_worker_rss_mib",
    "idle_controller_private_mib", "idle_worker_private_mib",
)

# A few idle workers for one second may cost the controller less than one
# clock tick of CPU: this figure is present but may be zero at tiny scale.
# CPU time comes from /proc in 10 ms ticks: a tiny run of ~1,000 tasks,
# or of 50 REST submissions, can end inside one.
MAY_BE_ZERO = ("idle_workers_cpu_share", "ctl_cpu_us_per_task",
               "ctl_store_off_cpu_us_per_task", "baseline_cpu_us_per_task",
               "baseline_peak_cpu_us_per_task",
               "rest_steady_cpu_us_per_job", "baseline_rest_cpu_us_per_job")

SIMULATED = """
tasks:
  lg-spawn:
    exec_command: lg-spawn
  lg-task:
    exec_command: lg-task
jobs:
  fan:
    stages:
    - spawn_task: lg-spawn
      task_class: lg-task
      job_failed_on_error: false
    - task_class: lg-task
      job_failed_on_error: false
"""


class BenchScriptTest(unittest.TestCase):

    def test_tiny_bench_writes_every_figure(self):
        with tempfile.TemporaryDirectory(prefix="shoal-bench-test-") as tmp:
            output = os.path.join(tmp, "bench.json")
            env = dict(os.environ, BENCH_SCALE="tiny", BENCH_BUILD="0",
                       BENCH_OUTPUT=output,
                       SHOAL_BUILD_DIR=harness.BUILD_DIR)
            proc = subprocess.run(["bash", BENCH], env=env, cwd=tmp,
                                  capture_output=True, text=True, timeout=120)
            self.assertEqual(proc.returncode, 0,
                             "bench.sh failed:\n%s\n%s"
                             % (proc.stdout, proc.stderr))
            with open(output) as f:
                result = json.load(f)
        self.assertIn("goals:", proc.stdout)
        figures = result["figures"]
        for name in FIGURES:
            self.assertIn(name, figures)
            value = figures[name]
            self.assertIsInstance(value, (int, float), name)
            self.assertGreater(value, 0, "%s is %r" % (name, value))
        for name in MAY_BE_ZERO:
            self.assertGreaterEqual(figures[name], 0, name)
        self.assertEqual(len(result["goals"]), 10, result["goals"])
        for goal in result["goals"]:
            self.assertIn(goal["figure"], figures, goal)
            self.assertIsInstance(goal["met"], bool, goal)
        self.assertIn("durable_store", result["notes"])
        machine = result["machine"]
        self.assertGreater(machine["nproc"], 0, machine)
        self.assertTrue(machine["kernel"], machine)
        # Latency scenarios repeat (twice at tiny scale): the table shows
        # the run with the median p99, and every run's p99.
        for name in ("half_dispatch_p99_ms", "half_store_off_dispatch_p99_ms",
                     "baseline_dispatch_p99_ms", "rest_steady_p99_ms",
                     "baseline_rest_p99_ms"):
            values = figures[name + "_runs"]
            self.assertEqual(len(values), 2, name)
            self.assertIn(figures[name], values, name)
        for name in ("half", "halfoff", "base", "rest", "restbase"):
            self.assertIn(name + ".1", result["raw"])
            self.assertIn(name + ".2", result["raw"])
        self.assertIn("(median run of 2; p99s ", proc.stdout)
        # CPU per task of the controller's threads, by name. At this size
        # a thread may have used less than a clock tick (all of them, in
        # a short run), but not in every run; with --ephemeral there is
        # no writer thread at all.
        spent = 0
        for name in ("ctl_thread_us_per_task",
                     "ctl_store_off_thread_us_per_task",
                     "half_thread_us_per_task"):
            threads = figures[name]
            self.assertEqual(sorted(threads),
                             ["io", "loop", "other", "writer"], name)
            self.assertTrue(all(v >= 0 for v in threads.values()), threads)
            spent += sum(threads.values())
        self.assertGreater(spent, 0)
        self.assertEqual(figures["ctl_store_off_thread_us_per_task"]["writer"],
                         0)
        self.assertIn("CPU per task by thread", proc.stdout)
        # The same half-peak load on the baseline controller: its two
        # busy threads, and shoal's latencies as multiples of its own.
        self.assertEqual(sorted(figures["baseline_thread_us_per_task"]),
                         ["io", "loop"])
        self.assertEqual(sorted(figures["baseline_peak_thread_us_per_task"]),
                         ["io", "loop"])
        self.assertEqual(result["raw"]["ctlbase"]["tasks"]["received"],
                         result["raw"]["ctloff"]["tasks"]["received"])
        self.assertIn("the same jobs, baseline controller", proc.stdout)
        self.assertIn("the same on the baseline REST server", proc.stdout)
        self.assertEqual(result["raw"]["restbase"]["rest"]["created"],
                         result["raw"]["rest"]["rest"]["created"])
        self.assertAlmostEqual(
            figures["half_dispatch_p99_vs_baseline"],
            figures["half_dispatch_p99_ms"]
            / figures["baseline_dispatch_p99_ms"], places=6)
        self.assertEqual(result["raw"]["base"]["tasks"]["received"],
                         result["raw"]["half"]["tasks"]["received"])
        self.assertIn("half peak, baseline controller", proc.stdout)
        self.assertIn("half peak against the baseline", proc.stdout)
        # The speed probe before each of the six scenarios and at the end.
        self.assertEqual(sorted(machine["cpu_probe_ms"]),
                         ["1", "2", "3", "4", "5", "6", "end"], machine)
        for tag, ms in machine["cpu_probe_ms"].items():
            self.assertGreater(ms, 0, tag)
        self.assertGreaterEqual(machine["cpu_probe_spread"], 1.0, machine)
        self.assertIn("machine speed: a fixed unit of CPU work took",
                      proc.stdout)
        # The machine's stalls, probed before the scenarios.
        probe = machine["stalls"]
        self.assertEqual(probe["role"], "machine-probe", probe)
        self.assertGreater(probe["samples"], 100, probe)
        self.assertGreater(probe["unit_cpu_us"]["p50"], 0, probe)
        self.assertGreaterEqual(probe["unit_cpu_us"]["p99"],
                                probe["unit_cpu_us"]["p50"], probe)
        self.assertGreaterEqual(probe["stalls"], 0, probe)
        self.assertIn("machine stalls: ", proc.stdout)
        self.assertEqual(result["scale"], "tiny")
        for name, run in result["raw"].items():
            self.assertEqual(run["error"], "", "%s: %s" % (name, run["error"]))
            self.assertFalse(run["timed_out"], name)


class LoadgenTest(harness.ClusterTest):

    definitions = SIMULATED

    def test_help_documents_every_option(self):
        proc = subprocess.run([LOADGEN, "--help"], capture_output=True,
                              text=True, timeout=10)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        for option in ("--connect", "--workers", "--slots", "--threads",
                       "--delay-ms", "--fail", "--vanish", "--vanish-after",
                       "--spawn", "--http", "--job", "--params", "--jobs",
                       "--rate", "--connections", "--wait", "--tasks",
                       "--duration", "--timeout", "--controller-pid",
                       "--output", "--write-spawn", "--tcp-quickack"):
            self.assertIn(option, proc.stdout, option)

    def test_bad_option_value_is_a_usage_error_naming_it(self):
        proc = subprocess.run([LOADGEN, "--workers", "lots", "--duration",
                               "1"], capture_output=True, text=True,
                              timeout=10)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("--workers", proc.stderr)

    def test_failing_and_vanishing_workers_still_finish_the_job(self):
        cluster = self.make_cluster()
        controller = cluster.start_controller()
        with tempfile.TemporaryDirectory(prefix="shoal-lg-test-") as tmp:
            output = os.path.join(tmp, "lg.json")
            proc = subprocess.run([
                LOADGEN, "-q", "-o", output,
                "--connect", "tcp://127.0.0.1:%d" % cluster.zmq_port,
                "--http", "127.0.0.1:%d" % cluster.http_port,
                "--workers", "3", "--slots", "2", "--vanish", "1",
                "--fail", "0.5", "--spawn", "40", "--job", "fan",
                "--jobs", "1", "--wait", "--timeout", "60",
                "--controller-pid", str(controller.pid)],
                capture_output=True, text=True, timeout=90)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            with open(output) as f:
                run = json.load(f)
        self.assertEqual(run["workers"]["vanished"], 1, run["workers"])
        self.assertEqual(run["jobs"]["succeeded"], 1, run["jobs"])
        self.assertGreater(run["tasks"]["failed"], 0, run["tasks"])
        self.assertEqual(run["tasks"]["spawn_entries"], 40, run["tasks"])
        self.assertGreater(run["controller"]["rss_kib"], 0, run["controller"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
