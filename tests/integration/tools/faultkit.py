"""Checks shared by the fault-injection tests (test_faults.py, test_netns.py).

Markers are the files tools/act.py (and gate.py) append to: one line
"<event> <time_ns> <pid>" per event. Process facts come from /proc only,
so nothing here needs anything beyond the standard library.
"""
import os
import re
import signal

FINAL_STATES = ("succeeded", "failed", "canceled")

# The line the controller logs once when a job ends (loop.c, JOB_ENDED).
# The job id is a field of its own: "job=ID ... job (class) STATE".
_ENDED = re.compile(r"\bjob=([0-9A-Za-z_-]+) .*\bjob \([^)]*\) "
                    r"(succeeded|failed|canceled)\s*$")


# ---- markers ---------------------------------------------------------------

def read_marker(path):
    """[(event, time_ns, pid)] from a marker file, [] if it is absent."""
    try:
        with open(path) as f:
            return [(e, int(t), int(p)) for e, t, p in
                    (line.split() for line in f if line.strip())]
    except FileNotFoundError:
        return []


def events(marker_dir, name):
    return [e for e, _, _ in read_marker(os.path.join(marker_dir, name))]


def start_pids(marker_dir, names):
    """The pid of every "start" line of the markers `names`."""
    pids = []
    for name in names:
        pids += [p for e, _, p in read_marker(os.path.join(marker_dir, name))
                 if e == "start"]
    return pids


# ---- the controller log ----------------------------------------------------

def read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


def ended_states(log_text, job_id):
    """The final states the controller logged for `job_id`, in order."""
    out = []
    for line in log_text.splitlines():
        m = _ENDED.search(line)
        if m and m.group(1) == job_id:
            out.append(m.group(2))
    return out


# ---- processes -------------------------------------------------------------

def proc_stat(pid):
    """{"state", "ppid", "pgrp"} of a live or zombie pid, None if gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            text = f.read().decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may hold spaces or ')'.
    rest = text[text.rindex(")") + 2:].split()
    return {"state": rest[0], "ppid": int(rest[1]), "pgrp": int(rest[2])}


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


def all_pids():
    return [int(n) for n in os.listdir("/proc") if n.isdigit()]


def children(ppid):
    """[(pid, state)] of the processes whose parent is `ppid`."""
    out = []
    for pid in all_pids():
        stat = proc_stat(pid)
        if stat and stat["ppid"] == ppid:
            out.append((pid, stat["state"]))
    return out


def zombie_children(ppids):
    """{parent: [zombie child pids]} for the parents that have any."""
    found = {}
    for ppid in ppids:
        zombies = [pid for pid, state in children(ppid) if state == "Z"]
        if zombies:
            found[ppid] = zombies
    return found


def live_task_processes(pids, needle):
    """The pids among `pids`, and members of their process groups, that
    still run a command line containing `needle` (a pid reused by some
    other program does not count) and are not zombies. Only meaningful
    for pids that were task processes: the markers record their own."""
    groups = set(pids)
    out = []
    for pid in all_pids():
        stat = proc_stat(pid)
        if not stat or stat["state"] == "Z":
            continue
        if pid not in groups and stat["pgrp"] not in groups:
            continue
        # An empty command line is a process caught mid-exec: count it.
        line = cmdline(pid)
        if needle in line or not line:
            out.append(pid)
    return sorted(out)


def kill_leftovers(pids, needle):
    """SIGKILLs what live_task_processes finds: cleanup only, so a broken
    engine does not leave 30 s sleepers behind a failed test."""
    for pid in live_task_processes(pids, needle):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# ---- the check every fault test ends with ------------------------------------

class SettledChecks:
    """For ClusterTest subclasses that set self.cluster and self.markers."""

    def assert_settled(self, job_ids, done=(), once=()):
        """Every job in `job_ids` is in a final state that the controller
        logged exactly once, no stage holds a task that is neither finished
        nor counted, every marker in `done` finished at least once (and
        never finished more often than it started), and every marker in
        `once` ran exactly once: one start, one done."""
        c = self.cluster
        log = read_text(os.path.join(c.tmp, "controller.log"))
        for job_id in job_ids:
            job = c.job(job_id)
            self.assertIn(job["state"], FINAL_STATES, job)
            self.assertEqual(ended_states(log, job_id), [job["state"]],
                             "final states the controller logged for job %s"
                             % job_id)
            for stage in job["stages"]:
                counts = stage["tasks"]
                self.assertEqual(counts["pending"] + counts["running"], 0,
                                 stage)
                self.assertEqual(counts["succeeded"] + counts["failed"]
                                 + counts["canceled"], counts["total"], stage)
        for name in once:
            self.assertEqual(events(self.markers, name), ["start", "done"],
                             "marker %s" % name)
        for name in done:
            seen = events(self.markers, name)
            self.assertIn("done", seen, "marker %s is missing" % name)
            self.assertGreaterEqual(seen.count("start"), seen.count("done"),
                                    "marker %s" % name)
