#!/usr/bin/env python3
"""shoal-worker against a controller played by this test.

Each test binds a ROUTER socket on a free loopback port, starts the real
shoal-worker with a temporary data directory, and speaks the wire
protocol to it: [identity][command][JSON body]. Nothing is mocked: tasks
are real processes and their logs are real files.

Timeouts here only keep a broken worker from hanging the run; no test
passes or fails on how fast something happened.

Environment: SHOAL_BUILD_DIR is the build directory holding shoal-worker
(default ./build). Needs Debian's python3-zmq.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import zmq

BUILD_DIR = os.path.abspath(os.environ.get("SHOAL_BUILD_DIR", "build"))
WORKER = os.path.join(BUILD_DIR, "shoal-worker")

# Upper bound on any wait; never an assertion about speed.
WAIT = 30.0

# A value that would do damage if anything passed it through a shell.
HOSTILE = "a b; rm -rf / $(reboot) 'q' \"dq\"\nnewline"

# A task that records its pid (= its process group) and then sleeps.
SLEEPER = ["-c", 'echo $$ > "pid-$SHOAL_TASK_ID"; exec sleep 60']

# The same, ignoring SIGTERM in the whole group (children inherit it).
STUBBORN = ["-c", 'trap "" TERM; echo $$ > "pid-$SHOAL_TASK_ID"; '
                  'while :; do sleep 0.1; done']


def setUpModule():
    if not os.access(WORKER, os.X_OK):
        raise RuntimeError(
            f"{WORKER} is missing: build it or set SHOAL_BUILD_DIR")


def wait_for(predicate, what, timeout=WAIT):
    """Polls `predicate` until it returns something true; returns that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"gave up after {timeout} s waiting for {what}")


def group_exists(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def param(name, default=None):
    entry = {"name": name, "source": "parameter"}
    if default is not None:
        entry["default"] = default
    return entry


class WorkerTestCase(unittest.TestCase):
    """Starts a worker per test and plays its controller."""

    slots = 2            # --slots of the worker
    extra_env = {}       # added to the worker's environment
    welcome = True       # answer the first HELLO with WELCOME in setUp
    extra_args = ()      # added to the worker's command line

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="shoal-worker-test-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.data_dir = os.path.join(self.tmp, "data")
        self.ctx = zmq.Context()
        self.addCleanup(self.ctx.term)
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.linger = 0
        self.addCleanup(self.router.close)
        port = self.router.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self.answer_heartbeats = True
        self.backlog = []
        self.identity = None
        self.start_worker()
        if self.welcome:
            self.handshake()

    # ---- the worker process ------------------------------------------

    def start_worker(self):
        env = {key: value for key, value in os.environ.items()
               if not key.startswith("SHOAL_")}
        env.update(self.extra_env)
        self.log_path = os.path.join(self.tmp, "worker.log")
        self.log_file = open(self.log_path, "wb")
        self.worker = subprocess.Popen(
            [WORKER, "--connect", self.endpoint, "--data-dir", self.data_dir,
             "--slots", str(self.slots), "--name", "test-worker",
             "--log-level", "debug", *self.extra_args],
            stdin=subprocess.DEVNULL, stdout=self.log_file,
            stderr=self.log_file, env=env)
        self.addCleanup(self.stop_worker)

    def stop_worker(self):
        if self.worker.poll() is None:
            self.worker.send_signal(signal.SIGTERM)
            try:
                self.worker.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait()
        self.log_file.close()

    def worker_log(self):
        with open(self.log_path, "r", errors="replace") as log:
            return log.read()

    # ---- the wire ------------------------------------------------------

    def send(self, command, body, identity=None):
        self.router.send_multipart([identity or self.identity,
                                    command.encode(),
                                    json.dumps(body).encode()])

    def send_raw(self, *frames):
        self.router.send_multipart([self.identity, *frames])

    def recv(self, timeout):
        """One message as (identity, command, body), or None."""
        if not self.router.poll(max(1, int(timeout * 1000))):
            return None
        frames = self.router.recv_multipart()
        self.assertEqual(len(frames), 3,
                         f"expected [identity][command][body], got {frames!r}")
        identity, command, body = frames
        return identity, command.decode(), json.loads(body)

    def expect(self, command, match=None, timeout=WAIT):
        """Waits for `command` (whose body satisfies `match`); returns
        (identity, body). Other messages wait in the backlog, except
        heartbeats, which are answered while answer_heartbeats is set."""
        for index, (identity, cmd, body) in enumerate(self.backlog):
            if cmd == command and (match is None or match(body)):
                del self.backlog[index]
                return identity, body
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self.recv(deadline - time.monotonic())
            if message is None:
                continue
            identity, cmd, body = message
            if cmd == "HEARTBEAT" and self.answer_heartbeats:
                self.send("HEARTBEAT", {}, identity)
            if cmd == command and (match is None or match(body)):
                return identity, body
            if cmd != "HEARTBEAT":
                self.backlog.append(message)
        self.fail(f"no {command} within {timeout} s; unmatched: "
                  f"{[m[1] for m in self.backlog]}\n"
                  f"worker log:\n{self.worker_log()}")

    def collect(self, seconds):
        """Every message that arrives within `seconds`."""
        seen = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            message = self.recv(deadline - time.monotonic())
            if message:
                seen.append(message)
        return seen

    def handshake(self):
        identity, hello = self.expect("HELLO")
        self.identity = identity
        self.send("WELCOME", {"controller": "test-controller",
                              "heartbeat_ms": 1000})
        return hello

    def task(self, job, task, command, args, inputs=(), params=None,
             kind="task", attempt=1):
        self.send("TASK", {"job": job, "task": task, "attempt": attempt,
                           "kind": kind, "command": command,
                           "args": list(args), "inputs": list(inputs),
                           "params": params or {}})

    def result(self, job, task):
        _, body = self.expect(
            "RESULT", lambda b: b.get("job") == job and b.get("task") == task)
        return body

    def run_task(self, job, task, command, args, **kwargs):
        self.task(job, task, command, args, **kwargs)
        return self.result(job, task)

    # ---- the job directory ------------------------------------------

    def job_dir(self, job):
        return os.path.join(self.data_dir, "jobs", job)

    def task_log(self, job, task):
        with open(os.path.join(self.job_dir(job), "logs", f"{task}.log"),
                  "rb") as log:
            return log.read()

    def sleeper_pid(self, job, task):
        path = os.path.join(self.job_dir(job), f"pid-{task}")

        def read_pid():
            try:
                with open(path) as f:
                    text = f.read()
            except FileNotFoundError:
                return None
            return int(text) if text.endswith("\n") else None
        return wait_for(read_pid, f"task {task} of {job} to start")

    def assertResult(self, result, status, **fields):
        self.assertEqual(result["status"], status,
                         f"status of {result}\nworker log:\n{self.worker_log()}")
        for key, value in fields.items():
            self.assertEqual(result.get(key), value, f"{key} of {result}")


class HelloTest(WorkerTestCase):
    welcome = False

    def test_hello_names_protocol_worker_host_and_slots(self):
        _, hello = self.expect("HELLO")
        self.assertEqual(hello.get("protocol"), 1, f"HELLO {hello}")
        self.assertEqual(hello.get("worker"), "test-worker", f"HELLO {hello}")
        self.assertEqual(hello.get("host"), socket.gethostname(),
                         f"HELLO {hello}")
        self.assertEqual(hello.get("slots"), self.slots, f"HELLO {hello}")
        self.assertEqual(hello.get("running"), 0, f"HELLO {hello}")
        self.assertEqual(hello.get("queue"), self.slots, f"HELLO {hello}")
        self.assertEqual(len(hello.get("instance", "")), 16, f"HELLO {hello}")


class ConnectionTest(WorkerTestCase):

    def test_heartbeats_arrive_after_welcome(self):
        self.expect("HEARTBEAT")
        self.expect("HEARTBEAT")

    def test_controller_heartbeat_is_answered_at_once_but_not_an_answer(self):
        # The controller heartbeats its idle workers all at once, once a
        # period; each answers at once when it has been silent for half a
        # period, so the answers come back in one burst too. Its own clock
        # waits 1.25 periods after its last HEARTBEAT. Period 4 s here:
        # an answer 2.2 s after the worker's last HEARTBEAT, 2.8 s before
        # its own clock would send one.
        self.answer_heartbeats = False
        self.send("WELCOME", {"controller": "test-controller",
                              "heartbeat_ms": 4000})
        self.expect("HEARTBEAT")
        time.sleep(2.2)
        self.send("HEARTBEAT", {})
        answer = self.recv(1.5)
        self.assertIsNotNone(answer, "no HEARTBEAT answered ours")
        self.assertEqual(answer[1], "HEARTBEAT", answer)
        # A HEARTBEAT right after its last is not answered: two peers
        # that both answered would bounce one back and forth for ever.
        self.send("HEARTBEAT", {})
        later = [m[1] for m in self.collect(1.5)]
        self.assertNotIn("HEARTBEAT", later)

    def test_reconnect_makes_the_worker_say_hello_on_the_same_socket(self):
        self.send("RECONNECT", {})
        identity, hello = self.expect("HELLO")
        self.assertEqual(identity, self.identity,
                         "HELLO after RECONNECT came from another socket")
        self.assertEqual(hello.get("worker"), "test-worker")

    def test_silent_controller_is_dropped_and_hello_sent_again(self):
        self.answer_heartbeats = False
        identity, hello = self.expect("HELLO")
        self.assertNotEqual(identity, self.identity,
                            "expected a fresh socket after the controller "
                            "went silent")
        self.assertEqual(hello.get("worker"), "test-worker")

    def test_result_that_ends_while_disconnected_is_sent_after_welcome(self):
        job = "queued"
        self.task(job, 1, "sh",
                  ["-c", "while [ ! -e go ]; do sleep 0.1; done; touch done"])
        wait_for(lambda: os.path.exists(
            os.path.join(self.job_dir(job), "logs", "1.log")), "task start")
        self.answer_heartbeats = False
        identity, _ = self.expect("HELLO")
        self.assertNotEqual(identity, self.identity)
        open(os.path.join(self.job_dir(job), "go"), "w").close()
        wait_for(lambda: os.path.exists(
            os.path.join(self.job_dir(job), "done")), "the task to end")

        # Not welcomed on the new socket yet: the result must wait.
        early = self.collect(1.0)
        self.assertNotIn("RESULT", [m[1] for m in early],
                         "RESULT sent before WELCOME")
        hellos = [m[0] for m in early if m[1] == "HELLO"]
        self.send("WELCOME", {"controller": "test-controller",
                              "heartbeat_ms": 1000},
                  hellos[-1] if hellos else identity)
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            message = self.recv(deadline - time.monotonic())
            if message is None:
                continue
            sender, command, body = message
            if command == "HELLO":      # it gave up again: welcome that one
                self.send("WELCOME", {"controller": "test-controller",
                                      "heartbeat_ms": 1000}, sender)
            elif command == "HEARTBEAT":
                self.send("HEARTBEAT", {}, sender)
            elif command == "RESULT":
                self.assertEqual((body["job"], body["task"]), (job, 1))
                self.assertResult(body, "exited", exit_code=0)
                return
        self.fail(f"no RESULT after WELCOME\n{self.worker_log()}")

    def test_undecodable_messages_are_dropped(self):
        self.send_raw(b"NOPE", b"{}")
        self.send_raw(b"TASK", b"not json")
        self.send_raw(b"TASK", b"[]")
        self.send_raw(b"TASK", b"{}")
        self.send_raw(b"CANCEL")
        result = self.run_task("after-junk", 1, "true", [])
        self.assertResult(result, "exited", exit_code=0)
        self.assertIsNone(self.worker.poll(), "worker died on bad input")


class TaskTest(WorkerTestCase):

    def test_hostile_parameter_is_one_verbatim_argument(self):
        result = self.run_task("hostile", 1, "/usr/bin/printf",
                               ["%s\n", "{v}"], inputs=[param("v")],
                               params={"v": HOSTILE})
        self.assertResult(result, "exited", exit_code=0)
        self.assertIn("duration_ms", result)
        self.assertEqual(self.task_log("hostile", 1),
                         (HOSTILE + "\n").encode())

    def test_parameter_values_are_not_logged(self):
        secret = "s3cret-value-that-must-not-be-logged"
        result = self.run_task("quiet", 1, "true", ["--token={token}"],
                               inputs=[param("token")],
                               params={"token": secret})
        self.assertResult(result, "exited", exit_code=0)
        self.assertNotIn(secret, self.worker_log())

    def test_nonzero_exit_code_is_reported(self):
        result = self.run_task("fails", 1, "sh", ["-c", "exit 3"])
        self.assertResult(result, "exited", exit_code=3)

    def test_death_by_signal_is_reported(self):
        result = self.run_task("killed", 1, "sh", ["-c", "kill -9 $$"])
        self.assertResult(result, "signaled", signal=9)

    def test_command_not_found_is_an_error_naming_it(self):
        result = self.run_task("nocmd", 1, "shoal-no-such-command", ["x"])
        self.assertResult(result, "error")
        self.assertIn("shoal-no-such-command", result.get("error", ""))

    def test_undeclared_input_is_an_error_naming_it(self):
        result = self.run_task("noinput", 1, "true", ["{missing}"],
                               params={"missing": "not declared"})
        self.assertResult(result, "error")
        self.assertIn("no value for input 'missing'", result.get("error", ""))
        self.assertFalse(os.path.exists(
            os.path.join(self.job_dir("noinput"), "logs", "1.log")),
            "a task without all its inputs must not run")

    def test_declared_input_without_value_is_an_error_naming_it(self):
        result = self.run_task("novalue", 1, "true", ["{needed}"],
                               inputs=[param("needed")])
        self.assertResult(result, "error")
        self.assertIn("no value for input 'needed'", result.get("error", ""))

    def test_parameter_default_fills_an_absent_parameter(self):
        result = self.run_task("default", 1, "/usr/bin/printf", ["%s", "{d}"],
                               inputs=[param("d", default="fallback")])
        self.assertResult(result, "exited", exit_code=0)
        self.assertEqual(self.task_log("default", 1), b"fallback")

    def test_invalid_job_id_is_refused(self):
        result = self.run_task("../escape", 1, "true", [])
        self.assertResult(result, "error")
        self.assertIn("job id", result.get("error", ""))
        self.assertFalse(os.path.exists(os.path.join(self.data_dir, "escape")))


class EnvironmentTest(WorkerTestCase):
    extra_env = {"SHOAL_TEST_FROM_ENV": "from-the-worker-env",
                 "SHOAL_JOB_ID": "inherited-must-be-replaced"}

    def test_environment_input_comes_from_the_worker(self):
        inputs = [{"name": "SHOAL_TEST_FROM_ENV", "source": "environment"},
                  {"name": "SHOAL_TEST_UNSET", "source": "environment",
                   "default": "env-default"}]
        result = self.run_task(
            "envin", 1, "/usr/bin/printf", ["%s %s", "{SHOAL_TEST_FROM_ENV}",
                                            "{SHOAL_TEST_UNSET}"],
            inputs=inputs, params={"SHOAL_TEST_FROM_ENV": "from-params"})
        self.assertResult(result, "exited", exit_code=0)
        self.assertEqual(self.task_log("envin", 1),
                         b"from-the-worker-env env-default")

    def test_job_variables_and_directory_reach_the_task(self):
        result = self.run_task(
            "envjob", 7, "sh",
            ["-c", 'printf "%s\\n" "$SHOAL_JOB_ID" "$SHOAL_TASK_ID" '
                   '"$SHOAL_JOB_DIR" "$(pwd -P)"'])
        self.assertResult(result, "exited", exit_code=0)
        job_dir = os.path.realpath(self.job_dir("envjob"))
        self.assertEqual(self.task_log("envjob", 7).decode().splitlines(),
                         ["envjob", "7", job_dir, job_dir])

    def test_inherited_job_variables_are_replaced_not_duplicated(self):
        result = self.run_task("envdup", 1, "env", [])
        self.assertResult(result, "exited", exit_code=0)
        lines = self.task_log("envdup", 1).decode().splitlines()
        self.assertEqual([line for line in lines
                          if line.startswith("SHOAL_JOB_ID=")],
                         ["SHOAL_JOB_ID=envdup"])


class SpawnTest(WorkerTestCase):

    def spawn(self, job, content):
        """Runs a spawn task that writes `content` to spawn.json."""
        return self.run_task(
            job, 1, "sh", ["-c", 'printf "%s" "$1" > spawn.json', "sh",
                           "{content}"],
            inputs=[param("content")], params={"content": content},
            kind="spawn")

    def test_spawn_list_is_returned(self):
        result = self.run_task(
            "fanout", 1, "sh",
            ["-c", "printf '%s' '[{{\"shard\": \"a\"}}, {{\"shard\": 2, "
                   "\"on\": true}}]' > spawn.json"],
            kind="spawn")
        self.assertResult(result, "exited", exit_code=0)
        self.assertEqual(result.get("spawn"),
                         [{"shard": "a"}, {"shard": 2, "on": True}])

    def test_malformed_spawn_json_is_an_error_with_its_position(self):
        result = self.spawn("badjson", '[{"a": 1,]')
        self.assertResult(result, "error", exit_code=0)
        self.assertTrue(result["error"].startswith("spawn.json:1:"),
                        f"error {result['error']!r}")
        self.assertNotIn("spawn", result)

    def test_nested_value_in_spawn_json_is_an_error_naming_entry_and_key(self):
        result = self.spawn("nested", '[{"a": "1"}, {"deep": {"b": 1}}]')
        self.assertResult(result, "error", exit_code=0)
        self.assertIn("entry 1", result["error"])
        self.assertIn("'deep'", result["error"])

    def test_spawn_json_that_is_not_an_array_is_an_error(self):
        result = self.spawn("notarray", '{"a": 1}')
        self.assertResult(result, "error", exit_code=0)
        self.assertIn("not a JSON array", result["error"])

    def test_stale_spawn_json_is_never_read(self):
        os.makedirs(self.job_dir("stale"))
        with open(os.path.join(self.job_dir("stale"), "spawn.json"), "w") as f:
            f.write('[{"old": "attempt"}]')
        result = self.run_task("stale", 1, "true", [], kind="spawn")
        self.assertResult(result, "error", exit_code=0)
        self.assertIn("spawn.json", result["error"])
        self.assertNotIn("spawn", result)

    def test_failed_spawn_task_is_reported_without_reading_spawn_json(self):
        result = self.run_task("spawnfail", 1, "sh", ["-c", "exit 4"],
                               kind="spawn")
        self.assertResult(result, "exited", exit_code=4)
        self.assertNotIn("error", result)


class CancelTest(WorkerTestCase):

    def test_cancel_reports_canceled_and_ends_the_process_group(self):
        self.task("long", 1, "sh", SLEEPER)
        pid = self.sleeper_pid("long", 1)
        self.assertEqual(os.getpgid(pid), pid,
                         "task does not lead its own process group")
        self.send("CANCEL", {"job": "long", "task": 1, "attempt": 1})
        self.assertResult(self.result("long", 1), "canceled")
        wait_for(lambda: not group_exists(pid), "the process group to end")

    def test_cancel_kills_a_group_that_ignores_sigterm(self):
        self.task("stubborn", 1, "sh", STUBBORN)
        pid = self.sleeper_pid("stubborn", 1)
        self.send("CANCEL", {"job": "stubborn", "task": 1, "attempt": 1})
        self.assertResult(self.result("stubborn", 1), "canceled",
                          signal=signal.SIGKILL.value)
        wait_for(lambda: not group_exists(pid), "the process group to end")

    def test_cancel_of_an_unknown_task_is_ignored(self):
        self.send("CANCEL", {"job": "ghost", "task": 9, "attempt": 1})
        result = self.run_task("real", 1, "true", [])
        self.assertResult(result, "exited", exit_code=0)
        self.assertFalse([m for m in self.backlog if m[1] == "RESULT"],
                         f"unexpected results {self.backlog}")


class SlotsTest(WorkerTestCase):
    slots = 2

    def test_tasks_beyond_slots_and_queue_are_refused(self):
        # Two slots and two queue places: the fifth task is refused.
        for task in (1, 2, 3, 4, 5):
            self.task("busy", task, "sh", SLEEPER)
        self.assertResult(self.result("busy", 5), "refused",
                          error="no free slot")
        pids = [self.sleeper_pid("busy", task) for task in (1, 2)]
        for task in (3, 4):
            self.assertFalse(os.path.exists(
                os.path.join(self.job_dir("busy"), "logs", "%d.log" % task)),
                "a queued task started before a slot was free")

    def test_a_queued_task_starts_when_a_slot_frees(self):
        for task in (1, 2, 3):
            self.task("queue", task, "sh", SLEEPER)
        self.sleeper_pid("queue", 1)
        self.send("CANCEL", {"job": "queue", "task": 1, "attempt": 1})
        self.assertResult(self.result("queue", 1), "canceled")
        self.sleeper_pid("queue", 3)      # started in the freed slot

    def test_a_queued_task_can_be_canceled_before_it_starts(self):
        for task in (1, 2, 3):
            self.task("queue", task, "sh", SLEEPER)
        self.send("CANCEL", {"job": "queue", "task": 3, "attempt": 1})
        self.assertResult(self.result("queue", 3), "canceled")
        self.assertFalse(os.path.exists(
            os.path.join(self.job_dir("queue"), "logs", "3.log")))


class ShutdownTest(WorkerTestCase):
    extra_args = ("--drain-timeout", "0")    # stop tasks at once

    def test_sigterm_stops_tasks_says_bye_and_exits_zero(self):
        self.task("running", 1, "sh", SLEEPER)
        pid = self.sleeper_pid("running", 1)
        self.worker.send_signal(signal.SIGTERM)
        self.expect("BYE")
        self.assertEqual(self.worker.wait(WAIT), 0,
                         f"exit status\n{self.worker_log()}")
        wait_for(lambda: not group_exists(pid), "the task's group to end")

    def test_sigterm_kills_tasks_that_ignore_it_then_exits_zero(self):
        self.task("stubborn", 1, "sh", STUBBORN)
        pid = self.sleeper_pid("stubborn", 1)
        self.worker.send_signal(signal.SIGTERM)
        self.expect("BYE")
        self.assertEqual(self.worker.wait(WAIT), 0,
                         f"exit status\n{self.worker_log()}")
        wait_for(lambda: not group_exists(pid), "the task's group to end")


class DrainTest(WorkerTestCase):
    extra_args = ("--drain-timeout", "60")

    def test_sigterm_drains_finishing_running_tasks_then_says_bye(self):
        quick = ["-c", 'echo $$ > "pid-$SHOAL_TASK_ID"; sleep 1']
        self.task("draining", 1, "sh", quick)
        self.sleeper_pid("draining", 1)
        self.worker.send_signal(signal.SIGTERM)
        self.expect("HEARTBEAT", lambda b: b.get("draining") is True)
        # A task sent now is refused, to run elsewhere.
        self.task("draining", 2, "sh", quick)
        self.assertResult(self.result("draining", 2), "refused",
                          error="worker is stopping")
        # The running one finishes and reports before the BYE.
        self.assertResult(self.result("draining", 1), "exited", exit_code=0)
        self.expect("BYE")
        self.assertEqual(self.worker.wait(WAIT), 0,
                         f"exit status\n{self.worker_log()}")

    def test_second_sigterm_stops_the_drain_at_once(self):
        self.task("draining", 1, "sh", SLEEPER)
        pid = self.sleeper_pid("draining", 1)
        self.worker.send_signal(signal.SIGTERM)
        self.expect("HEARTBEAT", lambda b: b.get("draining") is True)
        self.worker.send_signal(signal.SIGTERM)
        self.expect("BYE")
        self.assertEqual(self.worker.wait(WAIT), 0)
        wait_for(lambda: not group_exists(pid), "the task's group to end")


class OptionsTest(unittest.TestCase):

    def run_worker(self, *args, env=None):
        base = {key: value for key, value in os.environ.items()
                if not key.startswith("SHOAL_")}
        base.update(env or {})
        return subprocess.run([WORKER, *args], env=base, capture_output=True,
                              text=True, timeout=WAIT,
                              stdin=subprocess.DEVNULL)

    def test_version(self):
        done = self.run_worker("--version")
        self.assertEqual((done.returncode, done.stdout),
                         (0, "shoal-worker 0.1.0\n"))

    def test_help_lists_every_option_with_its_default(self):
        done = self.run_worker("--help")
        self.assertEqual(done.returncode, 0)
        for text in ("--connect", "tcp://127.0.0.1:5555", "--data-dir",
                     "./shoal-data", "--slots", "--name", "--log-level",
                     "--help", "--version", "SHOAL_CONNECT", "SHOAL_DATA_DIR",
                     "SHOAL_SLOTS", "SHOAL_WORKER_NAME", "SHOAL_LOG_LEVEL"):
            self.assertIn(text, done.stdout)

    def test_bad_slots_flag_exits_2_naming_it(self):
        for value in ("0", "4097", "two", ""):
            done = self.run_worker("--slots", value)
            self.assertEqual(done.returncode, 2, f"--slots {value!r}")
            self.assertIn("--slots", done.stderr)

    def test_bad_slots_variable_exits_2_naming_it(self):
        done = self.run_worker(env={"SHOAL_SLOTS": "many"})
        self.assertEqual(done.returncode, 2)
        self.assertIn("SHOAL_SLOTS", done.stderr)

    def test_bad_log_level_exits_2_naming_it(self):
        done = self.run_worker("--log-level", "loud")
        self.assertEqual(done.returncode, 2)
        self.assertIn("--log-level", done.stderr)


if __name__ == "__main__":
    unittest.main()
