#!/usr/bin/env python3
"""A task for the fault tests: act.py, plus a failure the test releases.

usage: gate.py MARKER_DIR NAME MODE
  MODE fail-on-release  append "start" to MARKER_DIR/NAME, wait until the
                        file MARKER_DIR/.release exists (at most
                        GATE_TIMEOUT seconds, default 60), then exit 1
  any other MODE        exactly what act.py does with the same arguments,
                        in this process (so the recorded pid is the task's)

The wait lets a test make "one task fails while all the others run" true
however slowly the others start: it releases the failure once it has seen
every other task start, without any sleep of its own.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import act  # noqa: E402

RELEASE = ".release"


def main():
    marker_dir, name, mode = sys.argv[1:4]
    if mode != "fail-on-release":
        return act.main()
    os.makedirs(marker_dir, exist_ok=True)
    act.mark(os.path.join(marker_dir, name), "start")
    release = os.path.join(marker_dir, RELEASE)
    deadline = time.monotonic() + float(os.environ.get("GATE_TIMEOUT", "60"))
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.02)
    print("failing on purpose", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
