"""The `shoal` command line against a real controller and real workers.

Each test starts a cluster on loopback (harness.Cluster), runs the `shoal`
binary from SHOAL_BUILD_DIR with SHOAL_URL pointing at it, and checks its
exit status and output against what the REST API itself says. Waits are
bounded by subprocess timeouts; no assertion depends on how fast anything
runs. With SHOAL_CLI_VALGRIND=1 every run of `shoal` goes through valgrind
and a memory error or a leak fails the test.
"""
import fcntl
import json
import os
import pty
import re
import signal
import struct
import subprocess
import termios
import unittest

from harness import BUILD_DIR, ClusterTest, free_port, wait_for

SHOAL = os.path.join(BUILD_DIR, "shoal")
TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools")

# Exit statuses, as docs/cli.md documents them.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELED, EXIT_API = 0, 1, 2, 3, 4
VALGRIND_ERROR = 99

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
  spawn-modes:
    input:
      TOOLS: {source: environment}
      modes: {source: parameter}
    exec_command: /usr/bin/python3
    exec_args: ["{TOOLS}/spawn.py", "--modes", "{modes}"]
  spawn:
    input:
      TOOLS: {source: environment}
      count: {source: parameter}
    exec_command: /usr/bin/python3
    exec_args: ["{TOOLS}/spawn.py", "{count}"]
  hold:
    input:
      TOOLS: {source: environment}
      MARKERS: {source: environment}
      item: {source: parameter, default: "0"}
    exec_command: /usr/bin/python3
    exec_args: ["{TOOLS}/act.py", "{MARKERS}", "hold-{item}", "slow"]
  say:
    input:
      greeting: {source: parameter}
      auth: {source: parameter}
    exec_command: /bin/echo
    exec_args: ["{greeting}", "{auth}"]
jobs:
  greet:
    name: Greeting
    input:
      greeting: {source: parameter}
      auth: {source: http-header, key: Authorization}
    stages:
      - {name: Say Hello, task_class: say}
  fan:
    input:
      modes: {source: parameter}
    stages:
      - {name: Download Data, task_class: act, spawn_task: spawn-modes}
      - {name: after, task_class: act}
  wide:
    input:
      count: {source: parameter}
    stages:
      - {name: spread, task_class: hold, spawn_task: spawn}
"""


class CliTest(ClusterTest):
    definitions = DEFINITIONS

    # ---- helpers ------------------------------------------------------
    def setUp(self):
        if not os.access(SHOAL, os.X_OK):
            self.fail("%s is not built (the 'shoal' target)" % SHOAL)
        self.cluster = self.make_cluster()
        self.markers = os.path.join(self.cluster.tmp, "markers")
        self.worker_env = {"TOOLS": TOOLS, "MARKERS": self.markers}

    def start(self, workers=1, slots=2, extra=(), worker_env=None):
        c = self.cluster
        c.start_controller(extra)
        env = dict(self.worker_env, **(worker_env or {}))
        for i in range(workers):
            c.start_worker("w%d" % (i + 1), slots=slots, env=env)
        return c

    def env(self, **extra):
        env = {k: v for k, v in os.environ.items()
               if k not in ("SHOAL_TOKEN", "NO_COLOR")}
        env["SHOAL_URL"] = "http://127.0.0.1:%d" % self.cluster.http_port
        env.update(extra)
        return env

    def argv(self, args):
        if os.environ.get("SHOAL_CLI_VALGRIND") == "1":
            return ["valgrind", "--quiet", "--leak-check=full",
                    "--errors-for-leak-kinds=definite,indirect",
                    "--error-exitcode=%d" % VALGRIND_ERROR, SHOAL, *args]
        return [SHOAL, *args]

    def shoal(self, *args, env=None, timeout=180):
        """Runs shoal to its end; returns the CompletedProcess."""
        out = subprocess.run(self.argv(args), capture_output=True, text=True,
                             env=env or self.env(), timeout=timeout,
                             cwd=self.cluster.tmp)
        self.assertNotEqual(out.returncode, VALGRIND_ERROR, out.stderr)
        return out

    def assertExit(self, out, code):
        self.assertEqual(out.returncode, code,
                         "exit %d, wanted %d\nstdout: %s\nstderr: %s"
                         % (out.returncode, code, out.stdout, out.stderr))

    def shoal_json(self, *args, **kw):
        out = self.shoal("--json", *args, **kw)
        self.assertExit(out, EXIT_OK)
        return json.loads(out.stdout)

    def submitted_id(self, out):
        match = re.search(r"submitted job ([0-9a-f]+)", out.stdout)
        self.assertTrue(match, out.stdout)
        return match.group(1)

    def marker(self, name):
        return os.path.exists(os.path.join(self.markers, name))

    # ---- submit and --wait --------------------------------------------
    def test_submit_with_param_and_header_waits_and_exits_0(self):
        c = self.start()
        out = self.shoal("submit", "greet", "-p", "greeting=hello",
                         "-H", "Authorization: Basic ZGVtbzpkZW1v", "--wait")
        self.assertExit(out, EXIT_OK)
        job_id = self.submitted_id(out)
        self.assertIn("job %s succeeded" % job_id, out.stdout)
        self.assertIn("stage 'Say Hello'", out.stdout)
        job = c.job(job_id)
        self.assertEqual(job["state"], "succeeded")
        self.assertEqual(job["params"], {"greeting": "hello", "auth": "***"})
        # The param and the header both reached the task.
        task = c.tasks(job_id)[0]
        log = c.get("/api/v1/jobs/%s/tasks/%d/log" % (job_id, task["id"]))
        self.assertEqual(log.body, "hello Basic ZGVtbzpkZW1v\n")

    def test_plain_wait_prints_one_line_per_stage_change(self):
        self.start()
        out = self.shoal("submit", "fan", "-p", "modes=ok,ok,ok", "--wait")
        self.assertExit(out, EXIT_OK)
        lines = out.stdout.splitlines()
        self.assertNotIn("\033", out.stdout, "no escapes when not a tty")
        self.assertIn("stage 'Download Data' succeeded: 4/4 done", lines)
        self.assertIn("stage 'after' succeeded: 1/1 done", lines)
        self.assertRegex(lines[-1], r"^job [0-9a-f]+ succeeded$")

    def test_failing_job_exits_1_and_says_why(self):
        c = self.start()
        out = self.shoal("submit", "fan", "-p", "modes=ok,fail", "--wait")
        self.assertExit(out, EXIT_FAILED)
        job = c.job(self.submitted_id(out))
        self.assertEqual(job["state"], "failed")
        self.assertIn("job %s failed: %s" % (job["id"], job["error"]),
                      out.stdout)
        self.assertIn("1 failed", out.stdout)

    def test_wait_on_a_canceled_job_exits_3(self):
        c = self.start(worker_env={"ACT_SLEEP": "60"})
        job = c.submit("fan", {"modes": "slow"})
        waiter = subprocess.Popen(self.argv(["status", job["id"], "--wait"]),
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True,
                                  env=self.env())
        wait_for(lambda: self.marker("one-0"), what="the slow task to start")
        self.assertEqual(c.post("/api/v1/jobs/%s/cancel" % job["id"]).status,
                         200)
        stdout, stderr = waiter.communicate(timeout=120)
        self.assertEqual(waiter.returncode, EXIT_CANCELED, stdout + stderr)
        self.assertIn("job %s canceled" % job["id"], stdout)

    def http_requests(self, route, method="GET"):
        """Requests the controller answered on `route`, from /metrics."""
        text = self.cluster.get("/metrics").body
        total = 0
        for line in text.splitlines():
            if line.startswith('shoal_http_requests_total{method="%s",route="%s",'
                               % (method, route)):
                total += int(line.rsplit(" ", 1)[1])
        return total

    def test_wait_follows_the_event_stream_instead_of_polling(self):
        self.start(worker_env={"ACT_SLEEP": "1.5"})
        out = self.shoal("submit", "fan", "-p", "modes=slow,slow", "--wait")
        self.assertExit(out, EXIT_OK)
        self.assertIn("stage 'Download Data' succeeded: 3/3 done",
                      out.stdout.splitlines())
        # One stream, counted once the server has closed it; the job itself
        # was never asked for (polling would have asked several times a
        # second for the whole 1.5 s).
        wait_for(lambda: self.http_requests("/api/v1/jobs/:id/events") == 1,
                 what="the stream to be counted")
        self.assertEqual(self.http_requests("/api/v1/jobs/:id"), 0)

    def test_wait_resumes_the_stream_across_a_controller_restart(self):
        c = self.start(worker_env={"ACT_SLEEP": "4"})
        job = c.submit("fan", {"modes": "slow"})
        waiter = subprocess.Popen(self.argv(["status", job["id"], "--wait"]),
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True,
                                  env=self.env())
        wait_for(lambda: self.marker("one-0"), what="the slow task to start")
        c.kill(c.controller, signal.SIGTERM)
        self.assertEqual(c.controller.returncode, 0)
        c.start_controller()
        stdout, stderr = waiter.communicate(timeout=120)
        self.assertEqual(waiter.returncode, EXIT_OK, stdout + stderr)
        self.assertIn("job %s succeeded" % job["id"], stdout)

    def on_terminal(self, args, env):
        """Runs shoal with stdout on a 100-column pseudo-terminal; returns
        (exit status, everything it wrote there)."""
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100,
                                                           0, 0))
        proc = subprocess.Popen(self.argv(args), stdout=slave,
                                stderr=subprocess.DEVNULL, env=env)
        os.close(slave)
        screen = b""
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:             # EIO: the child closed the pty
                break
            if not data:
                break
            screen += data
        os.close(master)
        proc.wait(timeout=60)
        return proc.returncode, screen.decode(errors="replace")

    def test_wait_on_a_terminal_draws_bars_in_place(self):
        self.start()
        code, screen = self.on_terminal(
            ["submit", "fan", "-p", "modes=ok,ok", "--wait"],
            self.env(TERM="xterm"))
        self.assertEqual(code, EXIT_OK, screen)
        self.assertIn("\033[2K", screen, "lines are cleared and redrawn")
        self.assertRegex(screen, r"Download Data\s+\[#+\]")
        self.assertIn("\033[32m", screen, "states are coloured on a tty")

    def test_no_color_keeps_colour_off_a_terminal(self):
        self.start()
        code, screen = self.on_terminal(
            ["definitions"], self.env(TERM="xterm", NO_COLOR="1"))
        self.assertEqual(code, EXIT_OK, screen)
        self.assertNotIn("\033[", screen)
        self.assertIn("greet", screen)

    def test_idempotency_key_gives_the_same_job(self):
        c = self.start(workers=0)
        first = self.shoal_json("submit", "fan", "-p", "modes=ok",
                                "--idempotency-key", "abc-1")
        again = self.shoal("submit", "fan", "-p", "modes=ok",
                           "--idempotency-key", "abc-1")
        self.assertExit(again, EXIT_OK)
        self.assertIn("job %s was already submitted" % first["id"],
                      again.stdout)
        self.assertEqual(len(c.get("/api/v1/jobs").json()["jobs"]), 1)

    # ---- --json -------------------------------------------------------
    def test_json_output_is_the_api_json(self):
        c = self.start()
        done = self.shoal_json("submit", "fan", "-p", "modes=ok", "--wait")
        self.assertEqual(done["state"], "succeeded")
        job_id = done["id"]
        self.assertEqual(self.shoal_json("status", job_id), c.job(job_id))
        self.assertEqual(self.shoal_json("tasks", job_id),
                         c.get("/api/v1/jobs/%s/tasks" % job_id).json())
        self.assertEqual(self.shoal_json("jobs"),
                         c.get("/api/v1/jobs").json())
        self.assertEqual(self.shoal_json("definitions"),
                         c.get("/api/v1/definitions").json())
        version = c.get("/api/v1/definitions").json()["version"]
        self.assertEqual(self.shoal_json("definitions", str(version)),
                         c.get("/api/v1/definitions/%d" % version).json())
        self.assertExit(self.shoal("definitions", str(version + 1)),
                        EXIT_API)
        self.assertExit(self.shoal("definitions", "v1"), EXIT_USAGE)
        workers = self.shoal_json("workers")
        self.assertEqual([w["id"] for w in workers["workers"]], ["w1"])
        created = self.shoal_json("submit", "fan", "-p", "modes=ok",
                                  "--no-start")
        self.assertEqual(created["state"], "created")
        self.assertEqual(self.shoal_json("cancel", created["id"])["state"],
                         "canceled")
        # logs --json: one object per line, per task.
        out = self.shoal("logs", job_id, "--json")
        self.assertExit(out, EXIT_OK)
        lines = [json.loads(line) for line in out.stdout.splitlines()]
        tasks = c.tasks(job_id)
        self.assertEqual([l["task"] for l in lines], [t["id"] for t in tasks])
        for line in lines:
            api = c.get("/api/v1/jobs/%s/tasks/%d/log"
                        % (job_id, line["task"])).body
            self.assertEqual(line["log"], api)

    # ---- tables -------------------------------------------------------
    def test_tables_show_what_the_api_has(self):
        c = self.start()
        job = c.submit("fan", {"modes": "ok,fail"})
        c.wait_job(job["id"])
        jobs = self.shoal("jobs")
        self.assertExit(jobs, EXIT_OK)
        self.assertRegex(jobs.stdout, r"(?m)^ID\s+JOB\s+STATE")
        self.assertRegex(jobs.stdout, r"(?m)^%s\s+fan\s+failed\s" % job["id"])

        tasks = self.shoal("tasks", job["id"])
        self.assertExit(tasks, EXIT_OK)
        rows = tasks.stdout.splitlines()[1:]
        api = c.tasks(job["id"])
        self.assertEqual(len(rows), len(api))
        for row, task in zip(rows, api):
            cells = row.split()
            self.assertEqual(cells[0], str(task["id"]))
            self.assertIn(task["state"], cells)
            self.assertIn(task["worker"], cells)

        status = self.shoal("status", job["id"])
        self.assertExit(status, EXIT_OK)
        self.assertRegex(status.stdout, r"(?m)^state\s+failed$")
        self.assertRegex(status.stdout, r"(?m)^definitions\s+%d$"
                         % c.job(job["id"])["definitions"])
        self.assertRegex(status.stdout, r"(?m)^0\s+Download Data\s+failed\s")
        self.assertIn(c.job(job["id"])["error"], status.stdout)

        workers = self.shoal("workers")
        self.assertExit(workers, EXIT_OK)
        self.assertRegex(workers.stdout, r"(?m)^w1\s+\S+\s+2\s+\d+\s+no\s")

        definitions = self.shoal("definitions")
        self.assertExit(definitions, EXIT_OK)
        self.assertRegex(definitions.stdout,
                         r"(?m)^greet\s+1\s+greeting\s+Authorization\s+"
                         r"Greeting$")
        for task_class in ("act", "spawn-modes", "say"):
            self.assertRegex(definitions.stdout, r"(?m)^%s\s" % task_class)

    def test_jobs_filters_by_state_and_limits_the_count(self):
        c = self.start()
        ok = c.submit("fan", {"modes": "ok"})
        bad = c.submit("fan", {"modes": "fail"})
        c.wait_job(ok["id"])
        c.wait_job(bad["id"])
        failed = self.shoal_json("jobs", "--state", "failed")
        self.assertEqual([j["id"] for j in failed["jobs"]], [bad["id"]])
        newest = self.shoal_json("jobs", "--limit", "1")
        self.assertEqual([j["id"] for j in newest["jobs"]], [bad["id"]])
        none = self.shoal("jobs", "--state", "canceled")
        self.assertExit(none, EXIT_OK)
        self.assertIn("no jobs", none.stdout)

    def canceled_wide_job(self, count):
        """A job of `count` spawned tasks (and its spawn task) that is
        canceled before they run, but for the one on the worker's one
        slot."""
        c = self.start(slots=1, worker_env={"ACT_SLEEP": "60"})
        job = c.submit("wide", {"count": count})
        wait_for(lambda: c.job(job["id"])["stages"][0]["tasks"]["total"]
                 == count + 1, timeout=120, what="the spawned tasks")
        self.assertExit(self.shoal("cancel", job["id"]), EXIT_OK)
        c.wait_job(job["id"])
        return c, job

    def test_tasks_reads_every_page_of_a_big_job(self):
        # More tasks than two pages hold (CLI_TASK_PAGE, 1000).
        count = 2005
        c, job = self.canceled_wide_job(count)
        every = self.shoal_json("tasks", job["id"])
        self.assertEqual(every["total"], count + 1)
        self.assertIsNone(every["next"])
        self.assertEqual([t["id"] for t in every["tasks"]],
                         list(range(count + 1)))
        self.assertEqual(every["tasks"], c.tasks(job["id"]))
        table = self.shoal("tasks", job["id"])
        self.assertExit(table, EXIT_OK)
        self.assertEqual(len(table.stdout.splitlines()), count + 2)
        first = self.shoal("tasks", job["id"], "--limit", "3")
        self.assertExit(first, EXIT_OK)
        self.assertEqual([row.split()[0] for row in
                          first.stdout.splitlines()[1:]], ["0", "1", "2"])
        canceled = self.shoal_json("tasks", job["id"], "--state", "canceled",
                                   "--limit", "1003")
        self.assertEqual(len(canceled["tasks"]), 1003)
        self.assertTrue(all(t["state"] == "canceled"
                            for t in canceled["tasks"]))
        self.assertIsNotNone(canceled["next"])
        last = c.tasks(job["id"])[-1]
        one = self.shoal("logs", job["id"], str(last["id"]))
        self.assertExit(one, EXIT_API)
        self.assertIn("No log yet", one.stderr)

    def peak_memory_kib(self, *args):
        """Runs shoal itself (never under valgrind), its output thrown
        away; returns its exit status and peak resident memory in KiB.
        A build with AddressSanitizer keeps freed memory aside to catch
        its use (256 MiB by default), which would measure the sanitizer:
        it is told to keep none (other builds ignore the variable)."""
        env = self.env()
        keep_none = ("quarantine_size_mb=0:thread_local_quarantine_size_kb=0"
                     ":allocator_release_to_os_interval_ms=0")
        env["ASAN_OPTIONS"] = ":".join(
            o for o in (env.get("ASAN_OPTIONS"), keep_none) if o)
        with open(os.devnull, "w") as devnull, \
                open(os.path.join(self.cluster.tmp, "cli.err"), "w") as err:
            proc = subprocess.Popen([SHOAL, *args], stdout=devnull,
                                    stderr=err, env=env,
                                    cwd=self.cluster.tmp)
            _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        return proc.returncode, usage.ru_maxrss

    def test_tasks_lists_a_long_job_in_the_memory_of_one_page(self):
        # 40 pages. Put together, the list took the client ~3.8 KiB per
        # task (150 MiB here); read a page at a time, all 40 take what
        # the first page alone takes.
        _, job = self.canceled_wide_job(40000)
        code, one_page = self.peak_memory_kib("tasks", job["id"],
                                              "--limit", "1000")
        self.assertEqual(code, EXIT_OK)
        # The logs read the list the same way (every task was canceled
        # before it ran: no log to fetch; the job has ended, so -f walks
        # the list once).
        for args in (("tasks", job["id"]), ("--json", "tasks", job["id"]),
                     ("logs", job["id"]), ("logs", job["id"], "-f")):
            code, every_page = self.peak_memory_kib(*args)
            self.assertEqual(code, EXIT_OK, args)
            self.assertLess(every_page, one_page + 4 * 1024,
                            "KiB for 40 pages against one: %s" % (args,))

    def test_tasks_filters_by_state_and_limits_the_count(self):
        c = self.start()
        job = c.submit("fan", {"modes": "ok,fail,ok"})
        c.wait_job(job["id"])
        failed = self.shoal_json("tasks", job["id"], "--state", "failed")
        self.assertEqual([t["id"] for t in failed["tasks"]],
                         [t["id"] for t in c.tasks(job["id"])
                          if t["state"] == "failed"])
        self.assertEqual(len(failed["tasks"]), 1)
        two = self.shoal_json("tasks", job["id"], "--limit", "2")
        self.assertEqual([t["id"] for t in two["tasks"]], [0, 1])
        self.assertEqual(two["next"], "2")
        bad = self.shoal("tasks", job["id"], "--state", "done")
        self.assertExit(bad, EXIT_API)
        self.assertIn("(field state)", bad.stderr)

    # ---- logs ---------------------------------------------------------
    def test_logs_print_every_task_under_a_header(self):
        c = self.start()
        job = c.submit("fan", {"modes": "ok,fail"})
        c.wait_job(job["id"])
        out = self.shoal("logs", job["id"])
        self.assertExit(out, EXIT_OK)
        for task in c.tasks(job["id"]):
            header = "==> task %d (stage '%s', %s) <==" % (
                task["id"], task["stage"], task["state"])
            self.assertIn(header, out.stdout)
        self.assertIn("failing on purpose", out.stdout)
        self.assertIn("spawned 2", out.stdout)
        failed = [t for t in c.tasks(job["id"]) if t["state"] == "failed"][0]
        one = self.shoal("logs", job["id"], str(failed["id"]))
        self.assertExit(one, EXIT_OK)
        self.assertEqual(one.stdout, "failing on purpose\n")

    def test_logs_follow_ends_when_the_job_ends(self):
        c = self.start(worker_env={"ACT_SLEEP": "1"})
        job = c.submit("fan", {"modes": "slow,ok"})
        out = self.shoal("logs", job["id"], "-f")
        self.assertExit(out, EXIT_OK)
        self.assertEqual(c.job(job["id"])["state"], "succeeded")
        self.assertIn("done one-0", out.stdout)
        self.assertIn("done one-1", out.stdout)
        self.assertIn("==> task", out.stdout)

    def test_logs_follow_of_one_task_ends_when_it_ends(self):
        c = self.start(worker_env={"ACT_SLEEP": "1"})
        job = c.submit("fan", {"modes": "slow"})
        wait_for(lambda: self.marker("one-0"), what="the slow task to start")
        slow = [t for t in c.tasks(job["id"]) if t["kind"] == "task"][0]
        out = self.shoal("logs", job["id"], str(slow["id"]), "--follow")
        self.assertExit(out, EXIT_OK)
        self.assertEqual(out.stdout, "done one-0\n")

    def test_logs_follow_asks_only_for_what_is_new(self):
        """While a task writes, each poll of `logs -f` asks for the bytes
        after those printed (a Range request, answered 206, or 416 when
        nothing is new): every line comes out once and in order."""
        c = self.start(worker_env={"ACT_SLEEP": "2", "ACT_LINES": "8"})
        job = c.submit("fan", {"modes": "chatty"})
        wait_for(lambda: self.marker("one-0"), what="the chatty task to start")
        task = [t for t in c.tasks(job["id"]) if t["kind"] == "task"][0]
        out = self.shoal("logs", job["id"], str(task["id"]), "--follow")
        self.assertExit(out, EXIT_OK)
        self.assertEqual(out.stdout, "".join("line %d\n" % k
                                             for k in range(1, 9))
                         + "done one-0\n")
        metrics = c.get("/metrics").body

        def answered(code):
            found = re.search(r'shoal_http_requests_total\{method="GET",'
                              r'route="/api/v1/jobs/:id/tasks/:task/log",'
                              r'code="%d"\} (\d+)' % code, metrics)
            return int(found.group(1)) if found else 0

        self.assertGreater(answered(206) + answered(416), 0, metrics)

    def test_logs_read_a_long_log_in_pieces(self):
        """A log longer than the 16 MiB the CLI asks for at once
        (S_FOLLOW_CHUNK in src/cli/logs.c) comes in pieces, each byte once,
        followed or printed once; in JSON the character cut at a piece's
        end opens the next piece instead of turning into U+FFFD."""
        piece = 16 * 1024 * 1024
        c = self.start(worker_env={"ACT_BIG": str(piece - 1),
                                   "PYTHONIOENCODING": "utf-8"})
        job = c.submit("fan", {"modes": "big"})
        c.wait_job(job["id"])
        task = [t for t in c.tasks(job["id"]) if t["kind"] == "task"][0]
        expected = "x" * (piece - 1) + "\u00e9\n" + "done one-0\n"
        text = self.shoal("logs", job["id"], str(task["id"]), "--follow")
        self.assertExit(text, EXIT_OK)
        self.assertEqual(len(text.stdout), len(expected))
        self.assertTrue(text.stdout == expected)
        out = self.shoal("--json", "logs", job["id"], str(task["id"]),
                         "--follow")
        self.assertExit(out, EXIT_OK)
        pieces = [json.loads(line) for line in out.stdout.splitlines()]
        self.assertEqual(len(pieces), 2, [len(p["log"]) for p in pieces])
        self.assertEqual(pieces[0]["log"], "x" * (piece - 1))
        self.assertTrue("".join(p["log"] for p in pieces) == expected)
        # Printed once, without -f, the text comes in the same pieces.
        once = self.shoal("logs", job["id"], str(task["id"]))
        self.assertExit(once, EXIT_OK)
        self.assertEqual(len(once.stdout), len(expected))
        self.assertTrue(once.stdout == expected)
        every = self.shoal("logs", job["id"])
        self.assertExit(every, EXIT_OK)
        self.assertIn("\n" + expected, every.stdout)

    # ---- cancel, retry, start -----------------------------------------
    def test_cancel_stops_a_running_job(self):
        c = self.start(worker_env={"ACT_SLEEP": "60"})
        job = c.submit("fan", {"modes": "slow"})
        wait_for(lambda: self.marker("one-0"), what="the slow task to start")
        out = self.shoal("cancel", job["id"])
        self.assertExit(out, EXIT_OK)
        self.assertIn("job %s canceled" % job["id"], out.stdout)
        self.assertEqual(c.job(job["id"])["state"], "canceled")
        again = self.shoal("cancel", job["id"])
        self.assertExit(again, EXIT_API)
        title = c.post("/api/v1/jobs/%s/cancel" % job["id"]).json()["title"]
        self.assertTrue(again.stderr.startswith("shoal: %s: " % title),
                        again.stderr)
        self.assertIn("(field state)", again.stderr)

    def test_retry_runs_a_failed_job_again(self):
        c = self.start()
        job = c.submit("fan", {"modes": "ok,fail-once"})
        self.assertEqual(c.wait_job(job["id"])["state"], "failed")
        out = self.shoal("retry", job["id"], "--wait")
        self.assertExit(out, EXIT_OK)
        self.assertIn("job %s succeeded" % job["id"], out.stdout)
        done = c.job(job["id"])
        self.assertEqual((done["state"], done["retries"]), ("succeeded", 1))

    def test_start_runs_a_job_submitted_with_no_start(self):
        c = self.start()
        out = self.shoal("submit", "fan", "-p", "modes=ok", "--no-start")
        self.assertExit(out, EXIT_OK)
        job_id = self.submitted_id(out)
        self.assertIn("state created", out.stdout)
        self.assertEqual(c.job(job_id)["state"], "created")
        started = self.shoal("start", job_id)
        self.assertExit(started, EXIT_OK)
        self.assertIn("job %s started" % job_id, started.stdout)
        self.assertEqual(c.wait_job(job_id)["state"], "succeeded")

    # ---- errors -------------------------------------------------------
    def test_unknown_job_exits_4_with_the_problem_title(self):
        c = self.start(workers=0)
        problem = c.get("/api/v1/jobs/nosuchjob").json()
        for command in ("status", "tasks", "logs", "cancel", "retry",
                        "start"):
            out = self.shoal(command, "nosuchjob")
            self.assertExit(out, EXIT_API)
            self.assertEqual(out.stderr, "shoal: %s: %s (field %s)\n"
                             % (problem["title"], problem["detail"],
                                problem["field"]), command)
        # With --json the problem object comes out on stdout too.
        out = self.shoal("status", "nosuchjob", "--json")
        self.assertExit(out, EXIT_API)
        self.assertEqual(json.loads(out.stdout), problem)

    def test_invalid_params_show_the_field(self):
        self.start(workers=0)
        out = self.shoal("submit", "greet", "-p", "greeting=hi")
        self.assertExit(out, EXIT_API)
        self.assertRegex(out.stderr, r"^shoal: Invalid params: .*\(field "
                                     r"header Authorization\)\n$")

    def test_bad_usage_exits_2(self):
        self.start(workers=0)
        cases = [
            ("jobs", "--frobnicate"),
            ("status",),
            ("status", "a", "b"),
            ("jobs", "--wait"),
            ("jobs", "--limit", "zero"),
            ("submit", "fan", "-p", "no-equals-sign"),
            ("submit", "fan", "-H", "no colon"),
            ("submit", "fan", "--wait", "--no-start"),
            ("logs", "abc", "not-a-number"),
            ("no-such-command",),
            (),
        ]
        for args in cases:
            out = self.shoal(*args)
            self.assertExit(out, EXIT_USAGE)
            self.assertTrue(out.stderr.startswith("shoal: "), out.stderr)
            self.assertEqual(out.stdout, "", args)
        self.assertEqual(self.cluster.get("/api/v1/jobs").json()["jobs"], [])

    def test_unreachable_controller_exits_4_naming_the_url(self):
        self.start(workers=0)
        url = "http://127.0.0.1:%d" % free_port()
        out = self.shoal("--url", url, "jobs")
        self.assertExit(out, EXIT_API)
        self.assertIn("cannot reach %s" % url, out.stderr)

    def test_help_and_version(self):
        self.start(workers=0)
        out = self.shoal("--help")
        self.assertExit(out, EXIT_OK)
        self.assertTrue(out.stdout.startswith("Usage: shoal "), out.stdout)
        for command in ("submit", "status", "jobs", "tasks", "logs", "cancel",
                        "retry", "start", "workers", "definitions"):
            self.assertRegex(out.stdout, r"(?m)^  %s\b" % command)
            sub = self.shoal(command, "--help")
            self.assertExit(sub, EXIT_OK)
            self.assertTrue(sub.stdout.startswith("Usage: shoal %s"
                                                  % command), sub.stdout)
        self.assertIn("--wait", self.shoal("submit", "--help").stdout)
        version = self.shoal("--version")
        self.assertExit(version, EXIT_OK)
        self.assertRegex(version.stdout, r"^shoal \d+\.\d+\.\d+\n$")

    # ---- the API token ------------------------------------------------
    def test_token_is_sent_from_the_environment_and_the_flag(self):
        c = self.cluster
        token_file = os.path.join(c.tmp, "token")
        with open(token_file, "w") as f:
            f.write("s3cret-token\n")
        c.start_controller(["--api-token-file", token_file])
        refused = c.get("/api/v1/jobs")
        self.assertEqual(refused.status, 401)
        title = refused.json()["title"]

        without = self.shoal("jobs")
        self.assertExit(without, EXIT_API)
        self.assertTrue(without.stderr.startswith("shoal: %s: " % title),
                        without.stderr)
        wrong = self.shoal("jobs", env=self.env(SHOAL_TOKEN="wrong"))
        self.assertExit(wrong, EXIT_API)
        self.assertIn(title, wrong.stderr)

        with_env = self.shoal("jobs", "--json",
                              env=self.env(SHOAL_TOKEN="s3cret-token"))
        self.assertExit(with_env, EXIT_OK)
        self.assertEqual(json.loads(with_env.stdout)["jobs"], [])
        with_flag = self.shoal("--token", "s3cret-token", "workers")
        self.assertExit(with_flag, EXIT_OK)
        from_file = self.shoal("definitions", "--token-file", token_file)
        self.assertExit(from_file, EXIT_OK)
        # The flag wins over the environment.
        overridden = self.shoal("--token", "wrong", "jobs",
                                env=self.env(SHOAL_TOKEN="s3cret-token"))
        self.assertExit(overridden, EXIT_API)


if __name__ == "__main__":
    unittest.main(verbosity=2)
