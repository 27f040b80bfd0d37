#!/usr/bin/env python3
"""A task for the integration tests: records that it ran, then acts.

usage: act.py MARKER_DIR NAME MODE
  MODE ok     append "start" and "done" lines to MARKER_DIR/NAME, exit 0
  MODE fail   append "start", exit 1
  MODE fail-after:OTHER  wait until task OTHER (a marker name in the same
              directory) has started, then fail like "fail": a test that
              needs a sibling running when this one fails does not race
              the sibling's start
  MODE fail-once  fail like "fail" the first time NAME runs, then act as "ok"
  MODE slow   append "start" and this pid, sleep SECONDS (env ACT_SLEEP,
              default 30), append "done", exit 0
Each line is "<event> <time_ns> <pid>", so a test can check that a task
ran exactly once and in which order stages ran. With ACT_PER_JOB=1 the
marker goes to MARKER_DIR/<job id>/NAME, so many jobs can share a dir.
"""
import os
import sys
import time


def mark(path, event):
    with open(path, "a") as f:
        f.write("%s %d %d\n" % (event, time.time_ns(), os.getpid()))


def main():
    marker_dir, name, mode = sys.argv[1:4]
    if os.environ.get("ACT_PER_JOB") == "1":
        marker_dir = os.path.join(marker_dir, os.environ["SHOAL_JOB_ID"])
    os.makedirs(marker_dir, exist_ok=True)
    path = os.path.join(marker_dir, name)
    ran_before = os.path.exists(path)
    if mode.startswith("fail-after:"):
        other = os.path.join(marker_dir, mode.split(":", 1)[1])
        deadline = time.monotonic() + 60
        while not os.path.exists(other) and time.monotonic() < deadline:
            time.sleep(0.01)
        mode = "fail"
    mark(path, "start")
    if mode == "fail" or (mode == "fail-once" and not ran_before):
        print("failing on purpose", file=sys.stderr)
        return 1
    if mode == "slow":
        time.sleep(float(os.environ.get("ACT_SLEEP", "30")))
    mark(path, "done")
    print("done", name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
