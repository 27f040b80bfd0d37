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
  MODE big    print ACT_BIG (default 1000) x's, then "é" (two bytes in
              UTF-8) and a newline, then act as "ok": a long log, with a
              character where a reader's piece of it may end
  MODE chatty like "slow", but print "line K" for K = 1..ACT_LINES (default
              5) over those SECONDS, each flushed at once: a log that grows
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
    if mode == "big":
        sys.stdout.write("x" * int(os.environ.get("ACT_BIG", "1000")))
        sys.stdout.write("\u00e9\n")
        sys.stdout.flush()
    if mode == "chatty":
        lines = int(os.environ.get("ACT_LINES", "5"))
        pause = float(os.environ.get("ACT_SLEEP", "30")) / lines
        for k in range(1, lines + 1):
            print("line", k, flush=True)
            time.sleep(pause)
    mark(path, "done")
    print("done", name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
