"""shoal-loadgen against a real controller: its simulated workers speak
the worker protocol through the builtin ZMTP client (--zmtp builtin, the
default) and through libzmq DEALER sockets (--zmtp libzmq), and what its
JSON report says agrees with what the controller's REST API says.

Simulated workers run no command: they answer each TASK themselves (a
spawn task with a list of --spawn entries), so the definitions below name
commands that do not exist. No assertion depends on how fast anything is.
"""
import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

LOADGEN = os.path.join(harness.BUILD_DIR, "shoal-loadgen")

DEFINITIONS = """
tasks:
  lg-spawn: {exec_command: lg-spawn}
  lg-task: {exec_command: lg-task}
jobs:
  fan:
    stages:
    - {name: fan-out, spawn_task: lg-spawn, task_class: lg-task, job_failed_on_error: false}
    - {name: after, task_class: lg-task}
"""

JOBS = 3
SPAWN = 50
# Per job: the spawn task, its SPAWN fanned-out tasks, the "after" task.
TASKS_PER_JOB = 1 + SPAWN + 1

# A bounded run: a loadgen that hangs fails the test instead of ctest.
LOADGEN_TIMEOUT_S = 60


class LoadgenTest(harness.ClusterTest):

    definitions = DEFINITIONS

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="shoal-lg-it-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    # ---- helpers -------------------------------------------------------
    def loadgen_argv(self, cluster, output, *args):
        return [LOADGEN, "-q", "-o", output,
                "-c", "tcp://127.0.0.1:%d" % cluster.zmq_port,
                "-H", "127.0.0.1:%d" % cluster.http_port,
                "--timeout", str(LOADGEN_TIMEOUT_S), *args]

    def run_loadgen(self, cluster, *args, name="run"):
        """Runs the loadgen to its end; returns (process, report)."""
        output = os.path.join(self.tmp, name + ".json")
        proc = subprocess.run(self.loadgen_argv(cluster, output, *args),
                              capture_output=True, text=True,
                              timeout=LOADGEN_TIMEOUT_S + 30)
        self.assertEqual(proc.returncode, 0,
                         "loadgen %s exited %d:\n%s"
                         % (" ".join(args), proc.returncode, proc.stderr))
        with open(output) as f:
            report = json.load(f)
        self.assertEqual(report["error"], "", report)
        self.assertFalse(report["timed_out"], report)
        return proc, report

    def fan_args(self, zmtp, *extra, workers=4):
        return ("--zmtp", zmtp, "-w", str(workers), "-s", "2", "-j", "fan",
                "-n", str(JOBS), "--spawn", str(SPAWN), "--wait",
                "--poll-ms", "20", *extra)

    def all_jobs(self, cluster):
        jobs = cluster.get("/api/v1/jobs?limit=1000").json()["jobs"]
        self.assertEqual(len(jobs), JOBS, jobs)
        return jobs

    def metrics(self, cluster):
        resp = cluster.get("/metrics")
        self.assertEqual(resp.status, 200, resp)
        values = {}
        for line in resp.body.splitlines():
            m = re.match(r"^(shoal_[a-z_]+(?:\{[^}]*\})?) (\S+)$", line)
            if m:
                values[m.group(1)] = float(m.group(2))
        return values

    def worker_count(self, cluster):
        return len(cluster.get("/api/v1/workers").json()["workers"])

    def assert_fan_job_shape(self, job):
        """The job ran every task of both stages to an end."""
        self.assertEqual([s["name"] for s in job["stages"]],
                         ["fan-out", "after"], job)
        fan, after = job["stages"]
        self.assertEqual(fan["tasks"]["total"], 1 + SPAWN, fan)
        self.assertEqual(after["tasks"]["total"], 1, after)
        for stage in job["stages"]:
            counts = stage["tasks"]
            self.assertEqual(counts["pending"] + counts["running"], 0, stage)
            self.assertEqual(counts["succeeded"] + counts["failed"],
                             counts["total"], stage)

    # ---- 1. a clean run, both ZMTP implementations ------------------------
    def test_fan_out_jobs_run_through_either_zmtp(self):
        for zmtp in ("builtin", "libzmq"):
            with self.subTest(zmtp=zmtp):
                cluster = self.make_cluster()
                cluster.start_controller()
                _, report = self.run_loadgen(cluster, *self.fan_args(zmtp),
                                             name="fan-" + zmtp)
                workers, tasks = report["workers"], report["tasks"]
                self.assertEqual(workers["zmtp"], zmtp, workers)
                self.assertEqual(workers["welcomed"], 4, workers)
                self.assertEqual(workers["vanished"], 0, workers)
                self.assertEqual(workers["disconnects"], 0, workers)
                self.assertEqual(tasks["received"], JOBS * TASKS_PER_JOB,
                                 tasks)
                self.assertEqual(tasks["results"], tasks["received"], tasks)
                self.assertEqual(tasks["spawn_tasks"], JOBS, tasks)
                self.assertEqual(tasks["spawn_entries"], JOBS * SPAWN, tasks)
                self.assertEqual(tasks["failed"], 0, tasks)
                self.assertEqual(tasks["bad_messages"], 0, tasks)
                self.assertEqual(tasks["send_errors"], 0, tasks)
                self.assertEqual(report["jobs"]["succeeded"], JOBS,
                                 report["jobs"])
                self.assertEqual(report["jobs"]["failed"], 0, report["jobs"])
                self.assertEqual(report["rest"]["created"], JOBS,
                                 report["rest"])
                # Every fanned-out task, first attempt, is timed once.
                self.assertEqual(report["dispatch_ms"]["count"],
                                 JOBS * SPAWN, report["dispatch_ms"])
                self.assertEqual(report["fanout_ms"]["count"], JOBS,
                                 report["fanout_ms"])

                # The controller saw the same.
                for job in self.all_jobs(cluster):
                    self.assertEqual(job["state"], "succeeded", job)
                    self.assert_fan_job_shape(job)
                    ran = cluster.tasks(job["id"])
                    self.assertEqual(len(ran), TASKS_PER_JOB)
                    for task in ran:
                        self.assertEqual(task["attempts"], 1, task)
                        self.assertTrue(task["worker"].startswith("lg-"),
                                        task)
                m = self.metrics(cluster)
                self.assertEqual(
                    m['shoal_tasks_finished_total{state="succeeded"}'],
                    JOBS * TASKS_PER_JOB, m)
                self.assertEqual(
                    m['shoal_jobs_finished_total{state="succeeded"}'],
                    JOBS, m)
                # Each simulated worker said BYE when the run ended.
                harness.wait_for(lambda: self.worker_count(cluster) == 0,
                                 timeout=10, what="workers to leave")

    # ---- 2. delays, jitter and failing tasks -------------------------------
    def test_failing_tasks_with_delays(self):
        cluster = self.make_cluster()
        cluster.start_controller()
        _, report = self.run_loadgen(
            cluster, *self.fan_args("builtin", "--delay-ms", "5",
                                    "--delay-jitter", "0.5", "--fail", "0.2"),
            name="fail")
        tasks = report["tasks"]
        self.assertEqual(tasks["bad_messages"], 0, tasks)
        self.assertEqual(tasks["send_errors"], 0, tasks)
        self.assertEqual(tasks["received"], JOBS * TASKS_PER_JOB, tasks)
        self.assertEqual(tasks["results"], tasks["received"], tasks)
        self.assertGreater(tasks["failed"], 0, tasks)
        self.assertLess(tasks["failed"], tasks["received"], tasks)

        # The loadgen fails a share of the plain tasks by a hash of job id
        # and task, the "after" task included; only that one fails its job
        # (job_failed_on_error is false on the fan-out stage alone). So a
        # job fails exactly when its "after" task failed, and the failures
        # the controller counts are those the loadgen sent.
        failed_tasks = 0
        failed_jobs = 0
        for job in self.all_jobs(cluster):
            self.assert_fan_job_shape(job)
            fan, after = job["stages"]
            failed_tasks += fan["tasks"]["failed"] + after["tasks"]["failed"]
            if after["tasks"]["failed"]:
                failed_jobs += 1
                self.assertEqual(job["state"], "failed", job)
                self.assertIn("after", job["error"] or "", job)
            else:
                self.assertEqual(job["state"], "succeeded", job)
            # The spawn task is never one of the failing share.
            spawn = [t for t in cluster.tasks(job["id"])
                     if t["kind"] == "spawn"]
            self.assertEqual([t["state"] for t in spawn], ["succeeded"], job)
        self.assertEqual(failed_tasks, tasks["failed"], tasks)
        self.assertEqual(report["jobs"]["failed"], failed_jobs,
                         report["jobs"])
        self.assertEqual(report["jobs"]["succeeded"], JOBS - failed_jobs,
                         report["jobs"])
        m = self.metrics(cluster)
        self.assertEqual(m['shoal_tasks_finished_total{state="failed"}'],
                         tasks["failed"], m)

    # ---- 3. workers that vanish --------------------------------------------
    def test_vanishing_workers_lose_no_job(self):
        cluster = self.make_cluster()
        # The default heartbeat period: a vanished worker is found lost at
        # the controller's next send to it (the peer is gone), or at the
        # latest after 3 silent periods. A shorter period would only risk
        # a busy machine's healthy workers being found lost too.
        cluster.start_controller()
        _, report = self.run_loadgen(
            cluster, *self.fan_args("builtin", "--vanish", "2",
                                    "--vanish-after", "1"),
            name="vanish")
        workers, tasks = report["workers"], report["tasks"]
        self.assertEqual(workers["welcomed"], 4, workers)
        self.assertEqual(workers["vanished"], 2, workers)
        self.assertEqual(tasks["bad_messages"], 0, tasks)
        self.assertEqual(tasks["send_errors"], 0, tasks)
        self.assertEqual(tasks["failed"], 0, tasks)
        self.assertEqual(report["jobs"]["succeeded"], JOBS, report["jobs"])
        # Each vanisher read one task and closed without answering it (what
        # else was on its way to it is never read); every task was answered
        # once by the workers that stayed.
        self.assertEqual(tasks["results"], JOBS * TASKS_PER_JOB, tasks)
        self.assertEqual(tasks["received"], tasks["results"] + 2, tasks)

        extra_attempts = 0
        for job in self.all_jobs(cluster):
            self.assertEqual(job["state"], "succeeded", job)
            self.assert_fan_job_shape(job)
            for task in cluster.tasks(job["id"]):
                self.assertEqual(task["state"], "succeeded", task)
                self.assertEqual(task["failures"], 0, task)
                extra_attempts += task["attempts"] - 1
        # The controller ran again what the vanished workers held: at least
        # the task each of them read.
        self.assertGreaterEqual(extra_attempts, 2)
        harness.wait_for(lambda: self.worker_count(cluster) == 0,
                         timeout=10, what="workers to leave")

    # ---- 4. the controller restarts under the builtin client ---------------
    def test_builtin_client_reconnects_to_a_restarted_controller(self):
        cluster = self.make_cluster()
        cluster.start_controller()
        output = os.path.join(self.tmp, "reconnect.json")
        stderr_path = os.path.join(self.tmp, "reconnect.err")
        with open(stderr_path, "wb") as err:
            proc = subprocess.Popen(
                self.loadgen_argv(cluster, output, "--zmtp", "builtin",
                                  "--name", "rc", "-w", "3", "-d", "6"),
                stdout=subprocess.DEVNULL, stderr=err)
        self.addCleanup(self._stop, proc)

        def three_workers():
            names = cluster.worker_names()
            return sorted(names) == ["rc-0", "rc-1", "rc-2"]
        harness.wait_for(three_workers, timeout=10,
                         what="3 simulated workers to join")
        old_pid = cluster.controller.pid
        cluster.kill(cluster.controller, signal.SIGKILL)
        cluster.start_controller()
        self.assertNotEqual(cluster.controller.pid, old_pid)
        # A new controller knows no worker until one says HELLO.
        harness.wait_for(three_workers, timeout=10,
                         what="3 simulated workers to join again")

        proc.wait(timeout=30)
        with open(stderr_path) as f:
            stderr = f.read()
        self.assertEqual(proc.returncode, 0, stderr)
        with open(output) as f:
            report = json.load(f)
        self.assertEqual(report["error"], "", report)
        workers = report["workers"]
        self.assertEqual(workers["welcomed"], 3, workers)
        self.assertGreaterEqual(workers["disconnects"], 3, workers)
        self.assertEqual(report["tasks"]["bad_messages"], 0, report["tasks"])
        harness.wait_for(lambda: self.worker_count(cluster) == 0,
                         timeout=10, what="workers to leave")

    # ---- 5. many workers joining, and a peer that never answers -------------
    def test_a_thousand_workers_join_without_lost_handshakes(self):
        # More workers at once than the controller's accept queue holds
        # (libzmq listens with a backlog of 100): the builtin client
        # connects them a few at a time, so no handshake is dropped.
        cluster = self.make_cluster()
        cluster.start_controller()
        _, report = self.run_loadgen(cluster, "--zmtp", "builtin", "-w",
                                     "1000", "-t", "2", "--name", "many",
                                     "-d", "0.5", name="many")
        workers = report["workers"]
        self.assertEqual(workers["welcomed"], 1000, workers)
        self.assertEqual(workers["handshake_timeouts"], 0, workers)
        self.assertEqual(workers["disconnects"], 0, workers)

    def test_builtin_client_gives_up_on_a_silent_peer(self):
        # A TCP server that accepts and reads but never answers: the
        # greeting stays unanswered, as behind a dropped TCP handshake.
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1024)
        self.addCleanup(listener.close)
        port = listener.getsockname()[1]
        seen = {"accepted": 0, "open": 0, "most_open": 0}
        stop = threading.Event()

        def serve():
            selector = selectors.DefaultSelector()
            selector.register(listener, selectors.EVENT_READ)
            while not stop.is_set():
                events = selector.select(timeout=0.05)
                # Connections that ended go first, so a worker connecting
                # right after another gave up is not counted with it.
                for key, _ in events:
                    if key.fileobj is listener:
                        continue
                    try:
                        data = key.fileobj.recv(4096)
                    except ConnectionError:
                        data = b""
                    if not data:
                        selector.unregister(key.fileobj)
                        key.fileobj.close()
                        seen["open"] -= 1
                if any(key.fileobj is listener for key, _ in events):
                    while True:
                        try:
                            listener.setblocking(False)
                            conn, _ = listener.accept()
                        except BlockingIOError:
                            break
                        selector.register(conn, selectors.EVENT_READ)
                        seen["accepted"] += 1
                        seen["open"] += 1
                        seen["most_open"] = max(seen["most_open"],
                                                seen["open"])
            for key in list(selector.get_map().values()):
                if key.fileobj is not listener:
                    key.fileobj.close()

        server = threading.Thread(target=serve, daemon=True)
        server.start()
        self.addCleanup(server.join)
        self.addCleanup(stop.set)

        output = os.path.join(self.tmp, "silent.json")
        proc = subprocess.run(
            [LOADGEN, "-q", "-o", output, "--zmtp", "builtin",
             "-c", "tcp://127.0.0.1:%d" % port, "-w", "40", "-t", "1",
             "--handshake-ms", "300", "--connect-timeout", "2", "-d", "1"],
            capture_output=True, text=True, timeout=30)
        stop.set()
        server.join()
        self.assertNotEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("of 40 workers were welcomed within 2 s", proc.stderr)
        # At most 32 handshakes at a time (the client's bound), and those
        # past --handshake-ms were closed and made again.
        self.assertLessEqual(seen["most_open"], 32, seen)
        self.assertGreater(seen["accepted"], 40, seen)
        with open(output) as f:
            workers = json.load(f)["workers"]
        self.assertEqual(workers["welcomed"], 0, workers)
        self.assertGreaterEqual(workers["handshake_timeouts"], 32, workers)

    def _stop(self, proc):
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    # ---- 6. usage errors ------------------------------------------------------
    def assert_usage_error(self, args, *words):
        """The loadgen exits 2 and its error names every one of words."""
        proc = subprocess.run([LOADGEN, *args, "-w", "1", "-d", "1"],
                              capture_output=True, text=True, timeout=10)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        for word in words:
            self.assertIn(word, proc.stderr)

    def test_unknown_zmtp_is_a_usage_error(self):
        self.assert_usage_error(["--zmtp", "nonsense"], "--zmtp", "nonsense")

    def test_handshake_ms_is_checked(self):
        self.assert_usage_error(["--handshake-ms", "0"], "--handshake-ms")

    def test_probe_machine_seconds_are_checked(self):
        self.assert_usage_error(["--probe-machine", "0"], "--probe-machine")
        self.assert_usage_error(["--probe-machine", "soon"],
                                "--probe-machine", "soon")

    def test_builtin_client_refuses_an_endpoint_it_cannot_speak(self):
        proc = subprocess.run([LOADGEN, "--zmtp", "builtin", "-c",
                               "udp://127.0.0.1:1", "-w", "1", "-d", "1"],
                              capture_output=True, text=True, timeout=10)
        self.assertNotEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("udp://127.0.0.1:1", proc.stderr)



class BaselineControllerTest(unittest.TestCase):
    """shoal-loadgen --baseline-controller: the least a controller can do,
    loaded by another shoal-loadgen's simulated workers, as the bench runs
    it to measure the floor of dispatch and stage-transition latency."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="shoal-lg-base-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.endpoint = "tcp://127.0.0.1:%d" % harness.free_port()

    def start_baseline(self, *args):
        """Starts a baseline controller; returns (process, its JSON path).
        It is stopped (SIGTERM) and reaped at the end of the test."""
        output = os.path.join(self.tmp, "baseline.json")
        proc = subprocess.Popen(
            [LOADGEN, "--baseline-controller", self.endpoint, "-q",
             "-o", output, *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.addCleanup(self.reap, proc)
        return proc, output

    def reap(self, proc):
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)

    def stop_baseline(self, proc, output):
        """SIGTERM: it writes its figures and exits 0."""
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
        self.assertEqual(proc.returncode, 0, err)
        with open(output) as f:
            return json.load(f)

    def run_workers(self, *args, name="workers"):
        output = os.path.join(self.tmp, name + ".json")
        proc = subprocess.run(
            [LOADGEN, "-q", "-o", output, "-c", self.endpoint,
             "--timeout", str(LOADGEN_TIMEOUT_S), *args],
            capture_output=True, text=True, timeout=LOADGEN_TIMEOUT_S + 30)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(output) as f:
            report = json.load(f)
        self.assertEqual(report["error"], "", report)
        self.assertFalse(report["timed_out"], report)
        return report

    def test_jobs_run_through_and_every_latency_is_measured(self):
        proc, output = self.start_baseline("-n", str(JOBS), "--rate", "20",
                                           "--await-workers", "4")
        report = self.run_workers(
            "-w", "4", "-s", "2", "--spawn", str(SPAWN),
            "--tasks", str(JOBS * TASKS_PER_JOB),
            "--controller-pid", str(proc.pid))
        tasks = report["tasks"]
        self.assertEqual(tasks["received"], JOBS * TASKS_PER_JOB, tasks)
        self.assertEqual(tasks["spawn_tasks"], JOBS, tasks)
        self.assertEqual(tasks["bad_messages"], 0, tasks)
        # Each spawned task once (first attempts), each job's last stage
        # once: the tracker followed the baseline's jobs as a real one's.
        self.assertEqual(report["dispatch_ms"]["count"], JOBS * SPAWN,
                         report["dispatch_ms"])
        self.assertEqual(report["transition_ms"]["count"], JOBS,
                         report["transition_ms"])
        # The baseline was sampled from /proc as a controller is (its CPU
        # may be less than one 10 ms tick in a run this short).
        self.assertEqual(report["controller"]["pid"], proc.pid)
        self.assertGreater(report["controller"]["rss_kib"], 0,
                           report["controller"])
        figures = self.stop_baseline(proc, output)
        self.assertEqual(figures["role"], "baseline-controller", figures)
        self.assertEqual(figures["jobs"]["asked"], JOBS, figures)
        self.assertEqual(figures["jobs"]["started"], JOBS, figures)
        self.assertEqual(figures["workers_welcomed"], 4, figures)
        self.assertEqual(figures["tasks_sent"], JOBS * TASKS_PER_JOB,
                         figures)
        self.assertEqual(figures["bad_messages"], 0, figures)
        # Every RESULT but those of tasks still held when the workers
        # left: the spawned ones were all answered before the last stage.
        self.assertGreaterEqual(figures["results"],
                                JOBS * TASKS_PER_JOB - JOBS, figures)
        self.assertLessEqual(figures["results"], JOBS * TASKS_PER_JOB,
                             figures)

    def test_jobs_wait_for_the_workers_and_outlive_a_worker_that_left(self):
        proc, output = self.start_baseline("-n", "1",
                                           "--await-workers", "3")
        # Two workers are not enough: nothing starts while they are here.
        early = self.run_workers("-w", "2", "-s", "2", "-d", "0.5",
                                 name="early")
        self.assertEqual(early["workers"]["welcomed"], 2, early["workers"])
        self.assertEqual(early["tasks"]["received"], 0, early["tasks"])
        # Two more make four HELLOs: the job starts. The credits of the two
        # that left are found dead as the first TASKs go out; their tasks
        # go to the workers that are there.
        late = self.run_workers("-w", "2", "-s", "1", "--spawn", "10",
                                "--tasks", "12", name="late")
        self.assertEqual(late["tasks"]["received"], 12, late["tasks"])
        figures = self.stop_baseline(proc, output)
        self.assertEqual(figures["workers_welcomed"], 4, figures)
        self.assertEqual(figures["tasks_sent"], 12, figures)
        self.assertEqual(figures["unreachable"], 4, figures)

    def assert_baseline_usage_error(self, args, *words):
        proc = subprocess.run([LOADGEN, "--baseline-controller",
                               self.endpoint, *args],
                              capture_output=True, text=True, timeout=10)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        for word in words:
            self.assertIn(word, proc.stderr)

    def test_usage_errors_name_the_option(self):
        self.assert_baseline_usage_error(["-w", "2", "-n", "1"], "--workers")
        self.assert_baseline_usage_error([], "--jobs")
        self.assert_baseline_usage_error(["-n", "1", "--await-workers", "x"],
                                         "--await-workers", "x")
        proc = subprocess.run([LOADGEN, "--await-workers", "2", "-w", "1",
                               "-d", "1"],
                              capture_output=True, text=True, timeout=10)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("--baseline-controller", proc.stderr)

    def test_an_endpoint_it_cannot_bind_is_an_error_naming_it(self):
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        self.addCleanup(taken.close)
        endpoint = "tcp://127.0.0.1:%d" % taken.getsockname()[1]
        proc = subprocess.run([LOADGEN, "--baseline-controller", endpoint,
                               "-n", "1"],
                              capture_output=True, text=True, timeout=10)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn(endpoint, proc.stderr)
        self.assertIn("cannot bind", proc.stderr)



class BaselineHttpTest(unittest.TestCase):
    """shoal-loadgen --baseline-http: the least a REST server can do,
    which the bench loads as it loads the controller's REST API."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="shoal-lg-http-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.port = harness.free_port()
        self.output = os.path.join(self.tmp, "server.json")
        self.proc = subprocess.Popen(
            [LOADGEN, "--baseline-http", "127.0.0.1:%d" % self.port, "-q",
             "-o", self.output],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.addCleanup(self.reap)
        harness.wait_for(self.listening, what="the baseline HTTP server")

    def listening(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), 1).close()
            return True
        except OSError:
            return False

    def reap(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=10)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=10)
        self.assertEqual(self.proc.returncode, 0, err)
        with open(self.output) as f:
            return json.load(f)

    def test_submissions_at_a_steady_rate_are_all_answered(self):
        output = os.path.join(self.tmp, "client.json")
        proc = subprocess.run(
            [LOADGEN, "-q", "-o", output, "-H", "127.0.0.1:%d" % self.port,
             "-j", "single", "-n", "200", "--rate", "400", "--connections",
             "4", "--timeout", str(LOADGEN_TIMEOUT_S)],
            capture_output=True, text=True, timeout=LOADGEN_TIMEOUT_S + 30)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(output) as f:
            rest = json.load(f)["rest"]
        self.assertEqual(rest["created"], 200, rest)
        self.assertEqual(rest["errors"], 0, rest)
        self.assertEqual(rest["latency_ms"]["count"], 200, rest)
        figures = self.stop()
        self.assertEqual(figures["role"], "baseline-http", figures)
        # The readiness probe's connection sent nothing.
        self.assertEqual(figures["requests"], 200, figures)
        self.assertEqual(figures["connections"], 5, figures)
        self.assertEqual(figures["closed_bad"], 0, figures)

    def read_answers(self, sock, count):
        """Reads `count` whole answers; returns their bodies in order."""
        data, bodies = b"", []
        while len(bodies) < count:
            chunk = sock.recv(65536)
            self.assertTrue(chunk, "closed after %d answers" % len(bodies))
            data += chunk
            while b"\r\n\r\n" in data:
                head, rest = data.split(b"\r\n\r\n", 1)
                self.assertTrue(head.startswith(b"HTTP/1.1 201 Created"), head)
                length = int(re.search(rb"Content-Length: (\d+)",
                                       head).group(1))
                if len(rest) < length:
                    break
                bodies.append(json.loads(rest[:length]))
                data = rest[length:]
        return bodies

    def test_requests_split_or_run_together_are_answered_in_order(self):
        request = (b"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Type: application/json\r\n"
                   b"Content-Length: 16\r\n\r\n{\"job\":\"single\"}")
        with socket.create_connection(("127.0.0.1", self.port), 5) as sock:
            sock.sendall(request + request + request[:30])
            self.assertEqual([b["id"] for b in self.read_answers(sock, 2)],
                             ["base-1", "base-2"])
            sock.sendall(request[30:-3])
            sock.sendall(request[-3:])
            self.assertEqual(self.read_answers(sock, 1), [{"id": "base-3"}])
        with socket.create_connection(("127.0.0.1", self.port), 5) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nContent-Length: many\r\n\r\n")
            self.assertEqual(sock.recv(100), b"")   # closed, no answer
        figures = self.stop()
        self.assertEqual(figures["requests"], 3, figures)
        self.assertEqual(figures["closed_bad"], 1, figures)


class BaselineHttpUsageTest(unittest.TestCase):

    def test_clients_options_are_refused(self):
        proc = subprocess.run([LOADGEN, "--baseline-http", "127.0.0.1:1",
                               "-n", "5"],
                              capture_output=True, text=True, timeout=10)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("--jobs", proc.stderr)

    def test_an_address_it_cannot_use_is_an_error_naming_it(self):
        for address in ("nonsense", "127.0.0.1:http", "999.0.0.1:80"):
            proc = subprocess.run([LOADGEN, "--baseline-http", address],
                                  capture_output=True, text=True, timeout=10)
            self.assertEqual(proc.returncode, 1, proc.stderr)
            self.assertIn(address, proc.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
