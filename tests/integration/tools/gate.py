#!/usr/bin/env python3
"""A task for the fault tests: act.py, plus a failure that waits its turn.

usage: gate.py MARKER_DIR NAME MODE
  MODE fail-after-N  append "start" to MARKER_DIR/NAME, wait until N marker
                     files in MARKER_DIR hold a "start" line (this one
                     included; at most GATE_TIMEOUT seconds, default 60),
                     then exit 1
  any other MODE     exactly what act.py does with the same arguments, in
                     this process (so the recorded pid is the task's)

The wait makes "one task fails while all the others run" hold however
slowly the other tasks start, without any sleep in the test itself.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import act  # noqa: E402


def started(marker_dir):
    count = 0
    for name in os.listdir(marker_dir):
        try:
            with open(os.path.join(marker_dir, name)) as f:
                if any(line.startswith("start ") for line in f):
                    count += 1
        except OSError:
            pass
    return count


def main():
    marker_dir, name, mode = sys.argv[1:4]
    if not mode.startswith("fail-after-"):
        return act.main()
    want = int(mode[len("fail-after-"):])
    os.makedirs(marker_dir, exist_ok=True)
    act.mark(os.path.join(marker_dir, name), "start")
    deadline = time.monotonic() + float(os.environ.get("GATE_TIMEOUT", "60"))
    while started(marker_dir) < want and time.monotonic() < deadline:
        time.sleep(0.05)
    print("failing on purpose after %d tasks started" % started(marker_dir),
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
