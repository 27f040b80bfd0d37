"""The project's own scripts (scripts/demo.sh, test.sh, bench.sh) answer
--help with their usage and do nothing else, and demo.sh and bench.sh,
which take no arguments, refuse one by name instead of starting a run of
minutes that ignores it.
"""
import os
import subprocess
import unittest

from harness import SOURCE_DIR

SCRIPTS = os.path.join(SOURCE_DIR, "scripts")


def header(script):
    """The comment block at the top of `script`, without the "# "."""
    lines = []
    with open(os.path.join(SCRIPTS, script)) as f:
        for line in f.read().splitlines()[1:]:
            if not line.startswith("#"):
                break
            lines.append(line[2:] if line.startswith("# ") else line[1:])
    return "\n".join(lines) + "\n"


def run(script, *args):
    return subprocess.run(["bash", os.path.join(SCRIPTS, script), *args],
                          capture_output=True, text=True, timeout=60,
                          cwd=SOURCE_DIR)


class ScriptUsageTest(unittest.TestCase):

    def test_help_prints_the_usage_and_runs_nothing(self):
        expected = {
            "demo.sh": ("scripts/demo.sh", "SHOAL_DEMO_KEEP"),
            "test.sh": ("scripts/test.sh", "SHOAL_SANITIZE", "ctest"),
            "bench.sh": ("scripts/bench.sh", "BENCH_SCALE", "BENCH_OUTPUT",
                         "BENCH_KEEP"),
        }
        for script, words in expected.items():
            for flag in ("--help", "-h"):
                proc = run(script, flag)
                self.assertEqual(proc.returncode, 0, (script, proc.stderr))
                for word in words:
                    self.assertIn(word, proc.stdout, (script, flag))
                # The usage and nothing else: no install, build or run
                # began.
                self.assertEqual(proc.stdout, header(script), script)
                self.assertEqual(proc.stderr, "", script)

    def test_an_argument_the_script_does_not_take_is_refused(self):
        for script in ("demo.sh", "bench.sh"):
            proc = run(script, "--fast")
            self.assertEqual(proc.returncode, 2, (script, proc.stdout))
            self.assertIn("unexpected argument '--fast'", proc.stderr,
                          script)
            self.assertIn("--help", proc.stderr, script)
            self.assertEqual(proc.stdout, "", script)


if __name__ == "__main__":
    unittest.main()
