#!/usr/bin/env python3
"""A task for the fault tests: act.py, plus tasks the test releases.

usage: gate.py MARKER_DIR NAME MODE
  MODE fail-on-release  append "start" to MARKER_DIR/NAME, wait until the
                        file MARKER_DIR/.release exists (at most
                        GATE_TIMEOUT seconds, default 60), then exit 1
  MODE ok-on-release    the same, then append "done" and exit 0
  any other MODE        exactly what act.py does with the same arguments,
                        in this process (so the recorded pid is the task's)

The wait lets a test decide when a task ends instead of guessing with a
sleep: "one task fails while all the others run" holds however slowly the
others start, and "this task is still running" holds for as long as the
test needs it to.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import act  # noqa: E402

RELEASE = ".release"


def main():
    marker_dir, name, mode = sys.argv[1:4]
    if mode not in ("fail-on-release", "ok-on-release"):
        return act.main()
    os.makedirs(marker_dir, exist_ok=True)
    path = os.path.join(marker_dir, name)
    act.mark(path, "start")
    release = os.path.join(marker_dir, RELEASE)
    deadline = time.monotonic() + float(os.environ.get("GATE_TIMEOUT", "60"))
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.02)
    if mode == "fail-on-release":
        print("failing on purpose", file=sys.stderr)
        return 1
    act.mark(path, "done")
    print("done", name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
