"""The shoal-worker executable as built: static when the build says so
(SHOAL_STATIC_WORKER, passed by tests/CMakeLists.txt as the value the build
actually used), and able to join a real controller and run a task.

The ELF is read here, without readelf: a static worker has no program
interpreter (PT_INTERP) and needs no shared library (DT_NEEDED). The
worker connects to "localhost", so the static binary's name lookup is
exercised too (glibc's built-in files source, /etc/hosts).
"""
import os
import struct
import unittest

from harness import WORKER, ClusterTest, wait_for

PT_DYNAMIC, PT_INTERP = 2, 3
DT_NULL, DT_NEEDED = 0, 1

DEFINITIONS = """
tasks:
  touch:
    exec_command: /bin/sh
    exec_args: ["-c", "echo ran > ran.txt"]
jobs:
  one:
    stages:
      - {name: only, task_class: touch}
"""


def elf_segments(path):
    """(p_type, p_offset, p_filesz) of each program header of a 64-bit
    little-endian ELF file, and the file's bytes."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise AssertionError("%s is not a 64-bit little-endian ELF file"
                             % path)
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    segments = []
    for i in range(phnum):
        p_type, _flags, p_offset, _vaddr, _paddr, p_filesz = \
            struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        segments.append((p_type, p_offset, p_filesz))
    return segments, data


def needed_count(segments, data):
    """How many DT_NEEDED entries the dynamic segment lists (0 without one:
    a static-pie executable has a dynamic segment but needs nothing)."""
    count = 0
    for p_type, offset, size in segments:
        if p_type != PT_DYNAMIC:
            continue
        for at in range(offset, offset + size, 16):
            tag, _value = struct.unpack_from("<qQ", data, at)
            if tag == DT_NULL:
                break
            if tag == DT_NEEDED:
                count += 1
    return count


class WorkerBinaryTest(ClusterTest):
    definitions = DEFINITIONS

    def test_static_build_gives_a_worker_without_interpreter_or_libraries(self):
        static = os.environ.get("SHOAL_STATIC_WORKER")
        if static is None:
            self.skipTest("SHOAL_STATIC_WORKER is not set: run under ctest")
        if static.upper() not in ("ON", "1", "TRUE", "YES"):
            self.skipTest("this build links the worker dynamically "
                          "(SHOAL_STATIC_WORKER=%s)" % static)
        segments, data = elf_segments(WORKER)
        interp = [data[offset:offset + size].rstrip(b"\0").decode()
                  for p_type, offset, size in segments if p_type == PT_INTERP]
        self.assertEqual(interp, [], "%s has a program interpreter: it is "
                         "dynamically linked" % WORKER)
        self.assertEqual(needed_count(segments, data), 0,
                         "%s needs shared libraries (DT_NEEDED)" % WORKER)

    def test_worker_joins_by_host_name_and_runs_a_task(self):
        c = self.make_cluster()
        c.start_controller()
        # start_worker connects to 127.0.0.1; this one must resolve a name.
        c.workers["w1"] = c._spawn("w1", [
            WORKER, "--connect", "tcp://localhost:%d" % c.zmq_port,
            "--data-dir", c.data_dir, "--slots", "1", "--name", "w1",
            "--log-level", "debug"])
        wait_for(lambda: "w1" in c.worker_names(), what="worker w1 to join")
        job = c.wait_job(c.submit("one")["id"])
        self.assertEqual(job["state"], "succeeded", job)
        with open(os.path.join(c.job_dir(job["id"]), "ran.txt")) as f:
            self.assertEqual(f.read(), "ran\n")


if __name__ == "__main__":
    unittest.main(verbosity=2)
