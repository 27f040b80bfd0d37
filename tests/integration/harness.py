"""Shared pieces of the integration tests: a real controller and real
workers on loopback, each test with its own data directory and ports.

Everything started here is stopped by PID when the cluster closes; nothing
else is touched. Waits are bounded so a broken engine fails a test instead
of hanging it; no assertion depends on how fast anything is.
"""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

BUILD_DIR = os.environ.get("SHOAL_BUILD_DIR", os.path.join(os.getcwd(), "build"))
SOURCE_DIR = os.environ.get(
    "SHOAL_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
CONTROLLER = os.path.join(BUILD_DIR, "shoal-controller")
WORKER = os.path.join(BUILD_DIR, "shoal-worker")

FINAL_STATES = ("succeeded", "failed", "canceled")


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=30.0, interval=0.05, what="condition"):
    """Polls predicate() until it returns a truthy value; fails on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s"
                                 % (timeout, what))
        time.sleep(interval)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def content_type(self):
        return self.headers.get("Content-Type", "")

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<%d %s %r>" % (self.status, self.content_type, self.body[:300])


def exchange(conn, method, path, body=None, headers=None, raw=None):
    """Sends one request on `conn` (JSON `body`, or `raw` bytes), reads
    the whole answer as a Response, and closes the connection."""
    try:
        hdrs = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        return Response(resp.status, dict(resp.getheaders()),
                        resp.read().decode(errors="replace"))
    finally:
        conn.close()


class Cluster:
    """A controller and its workers, started on loopback for one test."""

    def __init__(self, definitions, tmp=None):
        self.tmp = tmp or tempfile.mkdtemp(prefix="shoal-it-")
        self.data_dir = os.path.join(self.tmp, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.defs_path = os.path.join(self.tmp, "definitions.yaml")
        with open(self.defs_path, "w") as f:
            f.write(definitions)
        self.http_port = free_port()
        self.zmq_port = free_port()
        self.controller = None
        self.workers = {}
        self.logs = []

    # ---- processes ----------------------------------------------------
    def _spawn(self, name, argv, env=None):
        log_path = os.path.join(self.tmp, name + ".log")
        self.logs.append(log_path)
        log = open(log_path, "ab")
        full_env = dict(os.environ)
        full_env.update(env or {})
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                env=full_env, cwd=self.tmp)
        log.close()
        return proc

    def start_controller(self, extra=()):
        self.controller = self._spawn("controller", [
            CONTROLLER, "--definitions", self.defs_path,
            "--data-dir", self.data_dir,
            "--http", "127.0.0.1:%d" % self.http_port,
            "--bind", "tcp://127.0.0.1:%d" % self.zmq_port,
            "--log-level", "debug", *extra])
        wait_for(self._ready, what="controller /readyz")
        return self.controller

    def _ready(self):
        if self.controller.poll() is not None:
            raise AssertionError("controller exited with %s:\n%s"
                                 % (self.controller.returncode, self.dump_logs()))
        try:
            return self.get("/readyz").status == 200
        except OSError:
            return False

    def start_worker(self, name, slots=2, env=None, wait=True, extra=()):
        proc = self._spawn(name, [
            WORKER, "--connect", "tcp://127.0.0.1:%d" % self.zmq_port,
            "--data-dir", self.data_dir, "--slots", str(slots),
            "--name", name, "--log-level", "debug", *extra], env=env)
        self.workers[name] = proc
        if wait:
            wait_for(lambda: name in self.worker_names(),
                     what="worker %s to join" % name)
        return proc

    def worker_names(self):
        return [w["id"] for w in self.get("/api/v1/workers").json()["workers"]]

    def send_signal(self, proc, sig):
        """Sends `sig` without waiting; the process may end on its own."""
        proc.shoal_stopped_on_purpose = True
        proc.send_signal(sig)

    def kill(self, proc, sig=signal.SIGKILL):
        if proc is not None:
            proc.shoal_stopped_on_purpose = True
        if proc and proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def close(self):
        """Stops everything still running with SIGTERM and returns what went
        wrong: a process that did not exit 0 when asked to stop, or a
        sanitizer report or a ZeroMQ socket left open in any log."""
        problems = []
        procs = [(n, p) for n, p in self.workers.items()]
        procs.append(("controller", self.controller))
        for name, proc in procs:
            if proc is None:
                continue
            if proc.poll() is not None:
                if not getattr(proc, "shoal_stopped_on_purpose", False):
                    problems.append("%s died by itself with %s"
                                    % (name, proc.returncode))
                continue
            self.kill(proc, signal.SIGTERM)
            if proc.returncode != 0:
                problems.append("%s exited with %s after SIGTERM"
                                % (name, proc.returncode))
        for path in self.logs:
            try:
                with open(path, "rb") as f:
                    text = f.read().decode(errors="replace")
            except OSError:
                continue
            # czmq names each ZeroMQ socket left open at exit ("dangling
            # 'REQ' socket created at ...").
            for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                           "runtime error:", "dangling '"):
                if marker in text:
                    problems.append("%s: %s" % (os.path.basename(path), marker))
        return problems

    def dump_logs(self):
        out = []
        for path in self.logs:
            try:
                with open(path, "rb") as f:
                    text = f.read()[-6000:].decode(errors="replace")
            except OSError:
                continue
            out.append("==== %s ====\n%s" % (os.path.basename(path), text))
        return "\n".join(out)

    # ---- HTTP ----------------------------------------------------------
    def request(self, method, path, body=None, headers=None, raw=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port,
                                          timeout=30)
        return exchange(conn, method, path, body, headers, raw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def submit(self, job, params=None, headers=None, start=True):
        body = {"job": job, "params": params or {}}
        if not start:
            body["start"] = False
        resp = self.post("/api/v1/jobs", body, headers=headers)
        if resp.status != 201:
            raise AssertionError("submit %s: %r" % (job, resp))
        return resp.json()

    def job(self, job_id):
        return self.get("/api/v1/jobs/" + job_id).json()

    def tasks(self, job_id):
        """Every task of the job, page after page, in id order."""
        path = "/api/v1/jobs/%s/tasks?limit=10000" % job_id
        tasks, page = [], self.get(path).json()
        tasks += page["tasks"]
        while page.get("next") is not None:
            page = self.get(path + "&cursor=" + page["next"]).json()
            tasks += page["tasks"]
        return tasks

    def wait_job(self, job_id, timeout=120):
        def final():
            job = self.job(job_id)
            return job if job["state"] in FINAL_STATES else None
        return wait_for(final, timeout=timeout, interval=0.1,
                        what="job %s to end" % job_id)

    def wait_stored(self):
        """Waits until the state store has written every change the loop
        handed it (shoal_store_waiting_rows 0 on /metrics): a job seen
        ended then survives a SIGKILL. Until then the writer may hold it
        for a group commit of up to 5 ms."""
        def written():
            for line in self.get("/metrics").body.splitlines():
                if line.startswith("shoal_store_waiting_rows "):
                    return float(line.split()[1]) == 0
            raise AssertionError("no shoal_store_waiting_rows in /metrics")
        wait_for(written, what="the state store to write what it was given")

    def job_dir(self, job_id):
        return os.path.join(self.data_dir, "jobs", job_id)


class ClusterTest(unittest.TestCase):
    """Base class: self.cluster is closed and its logs shown on failure."""

    definitions = None

    def make_cluster(self, definitions=None):
        cluster = Cluster(definitions or self.definitions)
        self.addCleanup(self._close, cluster)
        return cluster

    def mount_small_state_dir(self, cluster):
        """A 1 MiB tmpfs at <cluster tmp>/state, for a state store whose
        disk fills up; unmounted after the test. Skips the test unless
        root (CI runs as root)."""
        if os.geteuid() != 0:
            self.skipTest("mounting a tmpfs needs root")
        state_dir = os.path.join(cluster.tmp, "state")
        os.makedirs(state_dir)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700",
                        "shoal-test-state", state_dir], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", state_dir])
        return state_dir

    def _close(self, cluster):
        problems = cluster.close()
        # _outcome.success turns False when this test failed or erred.
        failed = not getattr(self._outcome, "success", True)
        if failed or problems or os.environ.get("SHOAL_TEST_LOGS"):
            print(cluster.dump_logs())
        shutil.rmtree(cluster.tmp, ignore_errors=True)
        if problems:
            raise AssertionError("; ".join(problems))

    def assertProblem(self, resp, status, field=None):
        """Asserts an application/problem+json answer with `status`."""
        self.assertEqual(resp.status, status, resp)
        self.assertTrue(resp.content_type.startswith("application/problem+json"),
                        resp)
        problem = resp.json()
        for key in ("type", "title", "status", "detail"):
            self.assertIn(key, problem, problem)
        self.assertEqual(problem["status"], status, problem)
        if field is not None:
            self.assertEqual(problem.get("field"), field, problem)
        return problem
