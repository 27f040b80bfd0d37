"""Retention (--retain-finished): a job that ended longer ago than the
retention is forgotten, in memory and in the state store, so a restart
does not bring it back; its directory on the shared volume stays. A job
still running is kept however old it is, and one that ended while the
controller kept jobs forever goes at the first tick after a restart with
a retention.
"""
import os
import re
import signal
import subprocess
import unittest

from harness import CONTROLLER, ClusterTest, wait_for

DEFINITIONS = """
tasks:
  quick:
    exec_command: /bin/true
  long:
    input:
      RELEASE: {source: environment}
    exec_command: /bin/sh
    exec_args: ['-c', 'while [ ! -e "$1" ]; do sleep 0.1; done', sh,
                '{RELEASE}']
jobs:
  quick:
    stages:
      - {name: only, task_class: quick}
  long:
    stages:
      - {name: only, task_class: long}
"""

# One second of retention; the least heartbeat period, so that the tick
# that forgets jobs comes often (with one worker the period in force is
# still 1 s).
RETAIN = ("--retain-finished", "1", "--heartbeat-ms", "100")
KEEP = ("--retain-finished", "0", "--heartbeat-ms", "100")


class RetentionCase(ClusterTest):
    """What the retention tests share."""
    definitions = DEFINITIONS

    def listed_ids(self):
        """Every job of GET /api/v1/jobs, newest first, in pages of two;
        fails when a job shows up twice."""
        c = self.cluster
        ids, path = [], "/api/v1/jobs?limit=2"
        for _ in range(100):
            resp = c.get(path)
            self.assertEqual(resp.status, 200, resp)
            page = resp.json()
            ids += [job["id"] for job in page["jobs"]]
            self.assertEqual(len(ids), len(set(ids)), ids)
            if page.get("next") is None:
                return ids
            path = "/api/v1/jobs?limit=2&cursor=" + page["next"]
        self.fail("the job list does not end: %s" % ids)

    def wait_gone(self, job_id):
        c = self.cluster
        wait_for(lambda: c.get("/api/v1/jobs/" + job_id).status == 404,
                 timeout=60, interval=0.2,
                 what="job %s to be forgotten" % job_id)

    def forgotten(self):
        """shoal_jobs_forgotten_total on /metrics."""
        resp = self.cluster.get("/metrics")
        self.assertEqual(resp.status, 200, resp)
        for line in resp.body.splitlines():
            if line.startswith("shoal_jobs_forgotten_total "):
                return int(line.split()[1])
        self.fail("no shoal_jobs_forgotten_total in /metrics")

    def restart(self, extra):
        """A SIGKILL once what the test saw is stored, and a start."""
        c = self.cluster
        c.wait_stored()
        c.kill(c.controller, signal.SIGKILL)
        c.start_controller(extra=extra)


class RetentionTest(RetentionCase):

    def test_an_ended_job_is_forgotten_and_stays_forgotten(self):
        c = self.cluster = self.make_cluster()
        release = os.path.join(c.tmp, "release")
        # The long task ends once this file exists, whatever happens.
        self.addCleanup(lambda: open(release, "w").close())
        c.start_controller(extra=RETAIN)
        c.start_worker("w1", slots=2, env={"RELEASE": release})
        running = c.submit("long")["id"]
        wait_for(lambda: c.job(running)["state"] == "running",
                 what="the long job to run")
        # Jobs created and never started are kept; around the one that
        # ends, they make the job list span two pages across its gap.
        created = [c.submit("quick", start=False)["id"]]
        key = {"Idempotency-Key": "retention-key-1"}
        resp = c.post("/api/v1/jobs", {"job": "quick", "params": {}},
                      headers=key)
        self.assertEqual(resp.status, 201, resp)
        done = resp.json()["id"]
        created += [c.submit("quick", start=False)["id"] for _ in range(2)]
        self.assertEqual(c.wait_job(done)["state"], "succeeded")
        newest_first = created[::-1]

        self.wait_gone(done)
        self.assertEqual(self.forgotten(), 1)
        resp = c.get("/api/v1/jobs/" + done)
        self.assertProblem(resp, 404)
        self.assertProblem(c.get("/api/v1/jobs/%s/tasks" % done), 404)
        # Older than the retention, but running: kept.
        self.assertEqual(self.listed_ids(), newest_first + [running])
        self.assertEqual(c.job(running)["state"], "running")
        # The outputs are the users': the directory stays.
        self.assertTrue(os.path.isdir(c.job_dir(done)))
        # Its idempotency key went with it: the same request makes a
        # new job instead of replaying the forgotten one.
        resp = c.post("/api/v1/jobs", {"job": "quick", "params": {}},
                      headers=key)
        self.assertEqual(resp.status, 201, resp)
        self.assertNotEqual(resp.json()["id"], done)
        self.assertFalse(resp.json().get("replayed", False))
        again = resp.json()["id"]
        self.assertEqual(c.wait_job(again)["state"], "succeeded")
        metrics = c.get("/metrics")
        self.assertEqual(metrics.status, 200)
        self.assertIn('shoal_jobs_finished_total{state="succeeded"} 2',
                      metrics.body)

        # Canceled while its task runs on w1: forgotten once w1 has
        # stopped it and said so (the unit tests check that it waits).
        resp = c.post("/api/v1/jobs/%s/cancel" % running)
        self.assertEqual(resp.status, 200, resp)
        self.wait_gone(running)
        self.wait_gone(again)
        self.assertEqual(self.listed_ids(), newest_first)
        self.assertEqual(self.forgotten(), 3)

        # A cursor names a place in submission order, which has gaps
        # now: the page it gives must be the same after a restart.
        cursor = c.get("/api/v1/jobs?limit=1").json()["next"]
        page_path = "/api/v1/jobs?limit=1&cursor=" + cursor
        page = c.get(page_path).json()
        self.assertEqual([job["id"] for job in page["jobs"]],
                         [newest_first[1]])

        # The store forgot them too: a restart that keeps every job it
        # reads back does not bring them back.
        self.restart(KEEP)
        for job_id in (done, running, again):
            self.assertProblem(c.get("/api/v1/jobs/" + job_id), 404)
        self.assertEqual(self.listed_ids(), newest_first)
        # Jobs keep their place in the order across the restart.
        self.assertEqual(c.get(page_path).json(), page)
        # A counter since this controller started.
        self.assertEqual(self.forgotten(), 0)

    def test_compact_state_gives_back_the_space_of_forgotten_jobs(self):
        """SQLite reuses the pages of forgotten jobs but the file keeps its
        size; `--compact-state` rewrites it without them, with the
        controller stopped (it refuses while one runs), and the controller
        then reads back what was kept."""
        c = self.cluster = self.make_cluster()
        c.start_controller(extra=RETAIN)
        c.start_worker("w1", slots=2)
        kept = c.submit("quick", start=False)["id"]
        done = [c.submit("quick")["id"] for _ in range(600)]
        wait_for(lambda: self.forgotten() == len(done), timeout=120,
                 interval=0.5, what="the jobs to be forgotten")
        compact = [CONTROLLER, "--compact-state", "--data-dir", c.data_dir]
        busy = subprocess.run(compact, capture_output=True, text=True,
                              timeout=60)
        self.assertEqual(busy.returncode, 1, busy)
        self.assertIn("in use by another controller", busy.stderr)

        c.kill(c.controller, signal.SIGTERM)
        self.assertEqual(c.controller.returncode, 0)
        db = os.path.join(c.data_dir, "state", "shoal.db")
        before = os.path.getsize(db)
        out = subprocess.run(compact, capture_output=True, text=True,
                             timeout=60)
        self.assertEqual(out.returncode, 0, out)
        self.assertRegex(out.stdout, r"^%s: \d+(\.\d)? [KM]iB, of which "
                         r"\d+(\.\d)? [KM]iB free, now \d+(\.\d)? [KM]iB\n$"
                         % re.escape(db))
        after = os.path.getsize(db)
        self.assertLess(after, before / 2, out.stdout)
        self.assertFalse(os.path.exists(db + "-wal")
                         and os.path.getsize(db + "-wal") > 0)

        c.start_controller(extra=KEEP)
        self.assertEqual(c.job(kept)["state"], "created")
        self.assertEqual(self.listed_ids(), [kept])
        for job_id in done[:5]:
            self.assertProblem(c.get("/api/v1/jobs/" + job_id), 404)

    def test_a_job_kept_forever_goes_after_a_restart_with_a_retention(self):
        c = self.cluster = self.make_cluster()
        c.start_controller(extra=KEEP)
        c.start_worker("w1", slots=1)
        done = c.submit("quick")["id"]
        self.assertEqual(c.wait_job(done)["state"], "succeeded")
        kept = c.submit("quick", start=False)["id"]
        # 0 keeps every job. A worker is found lost at a tick, and the
        # same tick forgets jobs: once the killed worker is gone, a tick
        # has passed with the job ended before it.
        c.kill(c.workers["w1"], signal.SIGKILL)
        wait_for(lambda: not c.worker_names(), timeout=60,
                 what="the killed worker to be lost")
        self.assertEqual(c.get("/api/v1/jobs/" + done).status, 200)
        self.restart(RETAIN)
        self.wait_gone(done)
        self.assertEqual(self.listed_ids(), [kept])
        # Forgotten in the store as well, not only in memory.
        self.restart(KEEP)
        self.assertProblem(c.get("/api/v1/jobs/" + done), 404)
        self.assertEqual(self.listed_ids(), [kept])


class RetentionStoreFullTest(RetentionCase):
    """A job is forgotten while the state store's disk is full: the write
    that deletes its rows fails, and the writes that make good the failure
    once there is room again, or at the latest when the controller stops,
    delete it too. The state directory is a small tmpfs (root only, as CI
    runs)."""

    def test_a_job_forgotten_while_the_disk_is_full_stays_forgotten(self):
        c = self.cluster = self.make_cluster()
        state_dir = self.mount_small_state_dir(c)
        state = ("--state-dir", state_dir)
        c.start_controller(extra=RETAIN + state)
        c.start_worker("w1", slots=1)
        kept = c.submit("quick", start=False)["id"]
        done = c.submit("quick")["id"]
        self.assertEqual(c.wait_job(done)["state"], "succeeded")
        c.wait_stored()

        # No room left: every write fails from now on.
        filler = os.path.join(state_dir, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"x" * 4096):
                pass
        except OSError:
            pass   # ENOSPC: full
        finally:
            os.close(fd)
        self.wait_gone(done)
        with open(c.logs[0], errors="replace") as f:
            self.assertIn("state store", f.read(),
                          "no write failed while the disk was full")

        # Room again, and at once a stop: the rows of the forgotten job
        # must be gone from the store before the controller exits.
        os.unlink(filler)
        c.kill(c.controller, signal.SIGTERM)
        self.assertEqual(c.controller.returncode, 0)
        c.start_controller(extra=KEEP + state)
        self.assertProblem(c.get("/api/v1/jobs/" + done), 404)
        self.assertEqual(self.listed_ids(), [kept])


if __name__ == "__main__":
    unittest.main()
