"""`cmake --install BUILD --prefix TMP` puts a whole installation in place:
the binaries (which run), the man pages (which man finds through the
prefix), the systemd units pointed at the installed binaries, the sysusers
file, the example settings and the example job.
"""
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import BUILD_DIR, SOURCE_DIR

BINARIES = ("shoal", "shoal-controller", "shoal-worker", "shoal-keygen",
            "shoal-loadgen")
MAN_PAGES = ("share/man/man1/shoal.1", "share/man/man1/shoal-keygen.1",
             "share/man/man1/shoal-loadgen.1",
             "share/man/man8/shoal-controller.8",
             "share/man/man8/shoal-worker.8")
FILES = ("lib/sysusers.d/shoal.conf",
         "share/doc/shoal/examples/controller.env",
         "share/doc/shoal/examples/worker.env",
         "share/doc/shoal/examples/controller.yaml",
         "share/doc/shoal/examples/worker.yaml",
         "share/shoal/example/task_job_config.yaml",
         "share/shoal/example/README.md")
UNITS = ("shoal-controller.service", "shoal-worker@.service")


class InstallTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="shoal-install-")
        cls.prefix = os.path.join(cls.tmp, "prefix")
        cls.out = subprocess.run(["cmake", "--install", BUILD_DIR,
                                  "--prefix", cls.prefix],
                                 capture_output=True, text=True, timeout=300)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.assertEqual(self.out.returncode, 0, self.out.stdout + self.out.stderr)

    def test_binaries_are_installed_and_run(self):
        for name in BINARIES:
            path = os.path.join(self.prefix, "bin", name)
            with self.subTest(binary=name):
                self.assertTrue(os.access(path, os.X_OK), path)
                out = subprocess.run([path, "--version"], capture_output=True,
                                     text=True, timeout=30)
                self.assertEqual(out.returncode, 0, out)
                self.assertTrue(out.stdout.startswith(name + " "), out.stdout)

    def test_man_pages_are_found_under_the_prefix(self):
        for page in MAN_PAGES:
            self.assertTrue(os.path.isfile(os.path.join(self.prefix, page)),
                            page)
        if not shutil.which("man"):
            self.skipTest("man-db is not installed")
        for section, name in (("8", "shoal-controller"), ("1", "shoal")):
            out = subprocess.run(
                ["man", "-M", os.path.join(self.prefix, "share", "man"),
                 "-w", section, name], capture_output=True, text=True,
                timeout=30)
            self.assertEqual(out.returncode, 0, out)
            self.assertEqual(out.stdout.strip(), os.path.join(
                self.prefix, "share/man/man%s/%s.%s" % (section, name,
                                                        section)))

    def test_units_start_the_installed_binaries(self):
        for unit in UNITS:
            path = os.path.join(self.prefix, "lib/systemd/system", unit)
            with open(path) as f:
                text = f.read()
            with open(os.path.join(SOURCE_DIR, "deploy/systemd", unit)) as f:
                source = f.read()
            with self.subTest(unit=unit):
                execs = [line.split("=", 1)[1].split()[0]
                         for line in text.splitlines()
                         if line.startswith(("ExecStart=", "ExecStartPre="))]
                self.assertTrue(execs)
                for binary in execs:
                    self.assertEqual(os.path.dirname(binary),
                                     os.path.join(self.prefix, "bin"))
                    self.assertTrue(os.access(binary, os.X_OK), binary)
                # Nothing else changed.
                self.assertEqual(text.replace(self.prefix + "/bin/",
                                              "/usr/local/bin/"), source)

    def test_settings_and_example_are_installed(self):
        for name in FILES:
            self.assertTrue(os.path.isfile(os.path.join(self.prefix, name)),
                            name)
        for script in ("create_download_tasks.py", "serialize_data"):
            self.assertTrue(os.access(os.path.join(
                self.prefix, "share/shoal/example/bin", script), os.X_OK))

    def test_installed_example_settings_parse(self):
        examples = os.path.join(self.prefix, "share/doc/shoal/examples")
        # Parse errors would be exit 2; the example paths do not exist
        # here, which --check reports as 1 after the file was read.
        out = subprocess.run([os.path.join(self.prefix, "bin",
                                           "shoal-controller"), "--config",
                              os.path.join(examples, "controller.yaml"),
                              "--check"], capture_output=True, text=True,
                             timeout=30)
        self.assertEqual(out.returncode, 1, out)
        self.assertIn("/etc/shoal/definitions.yaml", out.stderr)
        out = subprocess.run([os.path.join(self.prefix, "bin",
                                           "shoal-worker"), "--config",
                              os.path.join(examples, "worker.yaml"),
                              "--healthcheck", "--health-file",
                              os.path.join(self.tmp, "none")],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual((out.returncode, out.stdout), (1, "unhealthy\n"), out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
