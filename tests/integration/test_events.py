"""The live event stream: GET /api/v1/events and /api/v1/jobs/{id}/events
(Server-Sent Events) on a real controller and worker.

Streams are read with http.client; every read has a socket time-out, so a
stream that never sends what a test waits for fails the test instead of
hanging it.
"""
import http.client
import json
import os
import signal
import unittest

from harness import ClusterTest, wait_for

TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools")

DEFINITIONS = """
tasks:
  list:
    input:
      TOOLS: {source: environment}
      count: {source: parameter}
    exec_command: /usr/bin/python3
    exec_args: ["{TOOLS}/spawn.py", "{count}"]
  item:
    exec_command: /bin/true
  finish:
    exec_command: /bin/true
jobs:
  fan:
    input:
      count: {source: parameter, default: "3"}
    stages:
      - {name: Items, spawn_task: list, task_class: item}
      - {name: Finish, task_class: finish}
  one:
    stages:
      - {name: Only, task_class: finish}
"""

FINAL = ("succeeded", "failed", "canceled")


class Stream:
    """One open SSE response, read event by event."""

    def __init__(self, cluster, path, headers=None, timeout=30):
        self.conn = http.client.HTTPConnection("127.0.0.1", cluster.http_port,
                                               timeout=timeout)
        self.conn.request("GET", path, headers=headers or {})
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = dict(self.resp.getheaders())
        self.ended = False

    def next(self):
        """The next event as a dict (id, event, data parsed), skipping
        comments; None when the server ended the stream."""
        event = {}
        while True:
            line = self.resp.readline()
            if not line:
                self.ended = True
                return None
            line = line.decode().rstrip("\n")
            if line == "":
                if event:
                    return event
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            if name == "id":
                event["id"] = int(value)
            elif name == "event":
                event["event"] = value
            elif name == "data":
                event["data"] = json.loads(value)

    def take(self, count):
        events = []
        for _ in range(count):
            event = self.next()
            if event is None:
                break
            events.append(event)
        return events

    def until(self, predicate):
        """Events up to and including the first one `predicate` accepts."""
        events = []
        while True:
            event = self.next()
            if event is None:
                raise AssertionError("the stream ended before the event "
                                     "waited for; got %r" % events[-5:])
            events.append(event)
            if predicate(event):
                return events

    def rest(self):
        """Every event until the server ends the stream."""
        events = []
        while True:
            event = self.next()
            if event is None:
                return events
            events.append(event)

    def close(self):
        self.conn.close()


def job_of(event):
    """The id of the job an event is about (None for a worker)."""
    data = event["data"]
    if event["event"] == "job":
        return data["id"]
    return data.get("job")


def final_job_event(job_id):
    return lambda e: (e.get("event") == "job" and e["data"]["id"] == job_id
                      and e["data"]["state"] in FINAL)


class EventStreamTest(ClusterTest):
    definitions = DEFINITIONS

    def setUp(self):
        self.c = self.make_cluster()

    def stream(self, path, **kw):
        s = Stream(self.c, path, **kw)
        self.addCleanup(s.close)
        return s

    def snapshot_id(self):
        resp = self.c.get("/api/v1/workers")
        self.assertEqual(resp.status, 200, resp)
        self.assertIn("X-Shoal-Event-Id", resp.headers)
        return int(resp.headers["X-Shoal-Event-Id"])

    def test_global_stream_shows_a_job_in_order(self):
        self.c.start_controller()
        s = self.stream("/api/v1/events")
        self.assertEqual(s.status, 200)
        self.assertTrue(s.headers["Content-Type"].startswith("text/event-stream"))
        self.assertEqual(s.headers.get("Cache-Control"), "no-store")
        self.assertNotIn("Content-Length", s.headers)
        self.c.start_worker("ev-w1", slots=2, env={"TOOLS": TOOLS})
        job = self.c.submit("fan", {"count": "4"})
        events = s.until(final_job_event(job["id"]))

        ids = [e["id"] for e in events]
        self.assertEqual(ids, sorted(set(ids)), "ids must strictly increase")
        workers = [e["data"] for e in events if e["event"] == "worker"]
        self.assertIn(("ev-w1", "connected"),
                      [(w["id"], w["state"]) for w in workers])
        mine = [e for e in events if e["event"] != "worker"]
        for e in mine:
            self.assertEqual(job_of(e), job["id"], e)
        # Every task reaches succeeded, and no task event follows that.
        tasks = {}
        for e in mine:
            if e["event"] == "task":
                t = e["data"]
                self.assertNotIn("params", t)
                self.assertNotEqual(tasks.get(t["id"], {}).get("state"),
                                    "succeeded", "event after the end: %r" % t)
                tasks[t["id"]] = t
        self.assertEqual(len(tasks), 1 + 4 + 1)      # spawn, 4 items, finish
        self.assertTrue(all(t["state"] == "succeeded" for t in tasks.values()),
                        tasks)
        # The last event of each task is the REST view of it, minus params.
        for rest in self.c.tasks(job["id"]):
            rest.pop("params")
            rest["job"] = job["id"]
            self.assertEqual(tasks[rest["id"]], rest)
        # Stages end succeeded, the first before the second starts.
        stages = [e["data"] for e in mine if e["event"] == "stage"]
        self.assertEqual([s_["state"] for s_ in stages if s_["index"] == 0][-1],
                         "succeeded")
        first_end = next(i for i, st in enumerate(stages)
                         if st["index"] == 0 and st["state"] == "succeeded")
        second_start = next(i for i, st in enumerate(stages)
                            if st["index"] == 1 and st["state"] == "running")
        self.assertLess(first_end, second_start)
        # The job's last event is its final state, as GET shows it.
        job_events = [e["data"] for e in mine if e["event"] == "job"]
        self.assertEqual(job_events[-1]["state"], "succeeded")
        self.assertEqual(job_events[-1], self.c.job(job["id"]))
        self.assertTrue(all(j["state"] not in FINAL for j in job_events[:-1]))

    def test_job_stream_starts_with_a_snapshot_and_ends_after_the_end(self):
        self.c.start_controller()
        job = self.c.submit("fan", {"count": "2"})      # no worker yet
        s = self.stream("/api/v1/jobs/%s/events" % job["id"])
        self.assertEqual(s.status, 200)
        first = s.next()
        self.assertEqual(first["event"], "job")
        self.assertEqual(first["data"]["id"], job["id"])
        self.assertEqual(first["data"]["state"], "running")
        self.c.start_worker("ev-w1", slots=2, env={"TOOLS": TOOLS})
        events = s.rest()                    # the server ends the stream
        self.assertTrue(s.ended)
        self.assertTrue(events, "no event after the snapshot")
        self.assertEqual(events[-1]["event"], "job")
        self.assertEqual(events[-1]["data"]["state"], "succeeded")
        self.assertGreater(events[0]["id"], first["id"])
        for e in events:
            self.assertEqual(job_of(e), job["id"], e)
        # A job that has ended: its snapshot, then the end at once.
        again = self.stream("/api/v1/jobs/%s/events" % job["id"])
        self.assertEqual([(e["event"], e["data"]["state"])
                          for e in again.rest()], [("job", "succeeded")])
        # An unknown job is a 404 problem.
        self.assertProblem(self.c.get("/api/v1/jobs/0000000000000000/events"),
                           404, "id")

    def test_resume_replays_exactly_the_missed_events(self):
        # Enough threads for every stream this test opens.
        self.c.start_controller(extra=("--http-threads", "64"))
        self.c.start_worker("ev-w1", slots=2, env={"TOOLS": TOOLS})
        start = self.snapshot_id()
        s = self.stream("/api/v1/events?last_event_id=%d" % start)
        job = self.c.submit("fan", {"count": "3"})
        events = s.until(final_job_event(job["id"]))
        self.assertEqual(events[0]["id"], start + 1)
        for k in (0, len(events) // 2, len(events) - 2):
            missed = events[k + 1:]
            by_header = self.stream("/api/v1/events",
                                    headers={"Last-Event-ID": str(events[k]["id"])})
            self.assertEqual(by_header.take(len(missed)), missed)
            by_header.close()
            by_query = self.stream("/api/v1/events?last_event_id=%d"
                                   % events[k]["id"])
            self.assertEqual(by_query.take(len(missed)), missed)
            by_query.close()
        # The header wins over the query.
        both = self.stream("/api/v1/events?last_event_id=%d" % start,
                           headers={"Last-Event-ID": str(events[-2]["id"])})
        self.assertEqual(both.take(1), events[-1:])
        # A job's stream resumed at its final event: empty, and it ends.
        final_id = events[-1]["id"]
        done = self.stream("/api/v1/jobs/%s/events" % job["id"],
                           headers={"Last-Event-ID": str(final_id)})
        self.assertEqual(done.status, 200)
        self.assertEqual(done.rest(), [])
        # Resumed before its end: its own events after that id, then it ends.
        mid = events[len(events) // 2]["id"]
        resumed = self.stream("/api/v1/jobs/%s/events?last_event_id=%d"
                              % (job["id"], mid))
        expected = [e for e in events if e["id"] > mid and e["event"] != "worker"]
        self.assertEqual(resumed.rest(), expected)

    def test_reset_when_the_id_is_older_than_the_held_events(self):
        self.c.start_controller(extra=("--event-buffer", "8"))
        self.c.start_worker("ev-w1", slots=2, env={"TOOLS": TOOLS})
        start = self.snapshot_id()
        job = self.c.submit("fan", {"count": "6"})
        self.c.wait_job(job["id"])
        last = self.snapshot_id()
        self.assertGreater(last - start, 8, "the job made too few events")
        s = self.stream("/api/v1/events?last_event_id=%d" % start)
        reset = s.next()
        self.assertEqual(reset["event"], "reset")
        self.assertIn("reason", reset["data"])
        self.assertEqual(reset["id"], last - 8)
        held = s.take(8)
        self.assertEqual([e["id"] for e in held], list(range(last - 7, last + 1)))
        # An id from another run (ahead of this one) is a reset too.
        ahead = self.stream("/api/v1/events?last_event_id=%d" % (last + 1000))
        self.assertEqual(ahead.next()["event"], "reset")

    def test_snapshot_header_and_resume_give_exactly_the_later_changes(self):
        self.c.start_controller()
        start = self.snapshot_id()
        everything = self.stream("/api/v1/events?last_event_id=%d" % start)
        job = self.c.submit("one")                   # waits for a worker
        resp = self.c.get("/api/v1/jobs/" + job["id"])
        self.assertEqual(resp.status, 200)
        snapshot_id = int(resp.headers["X-Shoal-Event-Id"])
        snapshot = resp.json()
        for path in ("/api/v1/jobs", "/api/v1/jobs/%s/tasks" % job["id"]):
            self.assertIn("X-Shoal-Event-Id", self.c.get(path).headers, path)
        after = self.stream("/api/v1/events?last_event_id=%d" % snapshot_id)
        self.c.start_worker("ev-w1", slots=1, env={"TOOLS": TOOLS})
        all_events = everything.until(final_job_event(job["id"]))
        before = [e for e in all_events if e["id"] <= snapshot_id]
        later = [e for e in all_events if e["id"] > snapshot_id]
        # The snapshot shows every change up to its id ...
        jobs_before = [e["data"] for e in before if e["event"] == "job"]
        self.assertEqual(jobs_before[-1], snapshot)
        # ... and the resumed stream gives exactly the changes after it.
        self.assertEqual(after.take(len(later)), later)
        self.assertEqual(later[-1]["data"]["state"], "succeeded")

    def test_a_201_is_never_older_than_the_events_before_it(self):
        # A job of one /bin/true often ends before its 201 goes out (the
        # answer waits for the store); the answer shows the job as it is
        # when sent, and says which events it already shows.
        self.c.start_controller()
        self.c.start_worker("ev-w1", slots=2, env={"TOOLS": TOOLS})
        start = self.snapshot_id()
        everything = self.stream("/api/v1/events?last_event_id=%d" % start)
        rank = {"created": 0, "running": 1, "succeeded": 2, "failed": 2,
                "canceled": 2}
        for _ in range(20):
            resp = self.c.post("/api/v1/jobs", {"job": "one"})
            self.assertEqual(resp.status, 201, resp)
            self.assertIn("Location", resp.headers)
            shown = int(resp.headers["X-Shoal-Event-Id"])
            body = resp.json()
            events = everything.until(final_job_event(body["id"]))
            before = [e["data"] for e in events
                      if e["event"] == "job" and e["id"] <= shown
                      and e["data"]["id"] == body["id"]]
            if before:
                self.assertGreaterEqual(rank[body["state"]],
                                        rank[before[-1]["state"]],
                                        (body, before[-1]))

    def test_bad_last_event_id_is_a_400_naming_the_field(self):
        self.c.start_controller()
        self.assertProblem(self.c.get("/api/v1/events?last_event_id=abc"),
                           400, "last_event_id")
        self.assertProblem(self.c.get("/api/v1/events?last_event_id=-1"),
                           400, "last_event_id")
        self.assertProblem(
            self.c.get("/api/v1/events?last_event_id=99999999999999999999999"),
            400, "last_event_id")
        self.assertProblem(self.c.get("/api/v1/events",
                                      headers={"Last-Event-ID": "1x"}),
                           400, "header Last-Event-ID")
        job = self.c.submit("one", start=False)
        self.assertProblem(self.c.get("/api/v1/jobs/%s/events?last_event_id="
                                      % job["id"]), 400, "last_event_id")

    def test_streams_over_the_cap_get_a_503_with_retry_after(self):
        # Four threads: at most two streams, half of them.
        self.c.start_controller(extra=("--http-threads", "4"))
        open_ = [self.stream("/api/v1/events") for _ in range(2)]
        self.assertEqual([s.status for s in open_], [200, 200])
        resp = self.c.get("/api/v1/events")
        self.assertProblem(resp, 503)
        self.assertEqual(resp.headers.get("Retry-After"), "5")
        # The REST API still answers, and a closed stream frees its place.
        self.assertEqual(self.c.get("/api/v1/workers").status, 200)
        job = self.c.submit("one", start=False)
        done = self.stream("/api/v1/jobs/%s/events" % job["id"])
        self.assertEqual(done.status, 503)
        open_[0].close()
        # The server notices at its next write (an event or a keep-alive).
        self.c.post("/api/v1/jobs/%s/cancel" % job["id"])

        def free():
            s = Stream(self.c, "/api/v1/events")
            s.close()
            return s.status == 200
        wait_for(free, timeout=40, interval=0.5, what="a stream place to free")

    def test_worker_events_follow_its_connections(self):
        self.c.start_controller()
        s = self.stream("/api/v1/events")
        self.c.start_worker("ev-w1", slots=1)
        # Killed without a goodbye and started again at once: the new
        # connection is up before the old one is found lost, so the worker
        # never looks gone.
        self.c.kill(self.c.workers["ev-w1"])
        self.c.start_worker("ev-w1", slots=1, wait=False)
        wait_for(lambda: len(self.c.worker_names()) == 2,
                 what="both connections of ev-w1 to be listed")
        wait_for(lambda: self.c.worker_names() == ["ev-w1"], timeout=60,
                 what="the old connection to be found lost")
        # A goodbye: now it is gone.
        self.c.kill(self.c.workers["ev-w1"], signal.SIGTERM)
        self.assertEqual(self.c.workers["ev-w1"].returncode, 0)
        events = s.until(lambda e: e["event"] == "worker"
                         and e["data"]["state"] == "gone")
        states = [e["data"]["state"] for e in events
                  if e["event"] == "worker" and e["data"]["id"] == "ev-w1"]
        self.assertEqual(states[-1], "gone")
        self.assertNotIn("gone", states[:-1], states)
        self.assertGreaterEqual(states.count("connected"), 2, states)
        self.assertEqual(events[-1]["data"]["slots"], 1)

    def test_controller_stops_promptly_with_open_streams(self):
        self.c.start_controller()
        job = self.c.submit("one")                   # never runs: no worker
        streams = [self.stream("/api/v1/events"),
                   self.stream("/api/v1/jobs/%s/events" % job["id"])]
        self.assertEqual(streams[1].next()["event"], "job")
        self.c.kill(self.c.controller, signal.SIGTERM)
        self.assertEqual(self.c.controller.returncode, 0)
        for s in streams:
            s.rest()                                 # ends, does not hang
            self.assertTrue(s.ended)


class EventStreamTokenTest(ClusterTest):
    definitions = DEFINITIONS

    def test_the_token_is_required_when_set(self):
        c = self.make_cluster()
        os.environ["SHOAL_API_TOKEN"] = "events-test-token"
        try:
            c.start_controller()
        finally:
            del os.environ["SHOAL_API_TOKEN"]
        self.assertProblem(c.get("/api/v1/events"), 401,
                           "header X-Shoal-Token")
        self.assertProblem(c.get("/api/v1/jobs/0123/events",
                                 headers={"X-Shoal-Token": "wrong"}),
                           401, "header X-Shoal-Token")
        s = Stream(c, "/api/v1/events",
                   headers={"X-Shoal-Token": "events-test-token"})
        self.addCleanup(s.close)
        self.assertEqual(s.status, 200)


if __name__ == "__main__":
    unittest.main()
