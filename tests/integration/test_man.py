"""The man pages in man/: each renders without a warning (groff -ww, and
man -l as a reader would see it), has the sections a man page needs, and
documents every long option its binary's --help prints; and the
configuration tables of docs/operations.md hold every key.
"""
import os
import re
import shutil
import subprocess
import unittest

from harness import BUILD_DIR, SOURCE_DIR

MAN_DIR = os.path.join(SOURCE_DIR, "man")

# page -> the binary it documents
PAGES = {
    "shoal-controller.8": "shoal-controller",
    "shoal-worker.8": "shoal-worker",
    "shoal.1": "shoal",
    "shoal-keygen.1": "shoal-keygen",
    "shoal-loadgen.1": "shoal-loadgen",
}

SECTIONS = ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS",
            "EXAMPLES", "SEE ALSO")


def long_options(text):
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*[a-z0-9]", text))


def help_text(binary, *args):
    out = subprocess.run([os.path.join(BUILD_DIR, binary), *args, "--help"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out
    return out.stdout


def rendered(page):
    """The page as man shows it, on one long line per paragraph, with the
    typographic dashes turned back into ASCII."""
    out = subprocess.run(["man", "--no-hyphenation", "--no-justification",
                          "-l", os.path.join(MAN_DIR, page)],
                         capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, MANWIDTH="400",
                                  MAN_KEEP_FORMATTING="", LC_ALL="C.UTF-8"))
    return out, re.sub("[\u2010\u2011\u2012\u2013\u2212]", "-", out.stdout)


@unittest.skipUnless(shutil.which("groff") and shutil.which("man"),
                     "groff and man-db are not installed (scripts/deps.sh)")
class ManPageTest(unittest.TestCase):

    def test_every_binary_has_a_page(self):
        self.assertEqual(sorted(os.listdir(MAN_DIR)), sorted(PAGES))

    def test_pages_render_without_warnings(self):
        for page in PAGES:
            with self.subTest(page=page):
                out = subprocess.run(
                    ["groff", "-man", "-Tutf8", "-ww", "-z",
                     os.path.join(MAN_DIR, page)],
                    capture_output=True, text=True, timeout=60)
                self.assertEqual((out.returncode, out.stderr), (0, ""))
                shown, _ = rendered(page)
                self.assertEqual((shown.returncode, shown.stderr), (0, ""))

    def test_pages_have_the_usual_sections(self):
        for page in PAGES:
            with open(os.path.join(MAN_DIR, page)) as f:
                source = f.read()
            headings = re.findall(r'^\.SH "?([^"\n]+)"?$', source, re.M)
            with self.subTest(page=page):
                for section in SECTIONS:
                    self.assertIn(section, headings)
                name, section = page.rsplit(".", 1)
                self.assertRegex(source, r"(?m)^\.TH %s %s "
                                 % (re.escape(name.upper()), section))

    def test_every_option_of_help_is_documented(self):
        for page, binary in PAGES.items():
            if not os.path.exists(os.path.join(BUILD_DIR, binary)):
                self.skipTest("%s is not built" % binary)
            options = long_options(help_text(binary))
            if binary == "shoal":        # each command has its own options
                commands = re.findall(r"(?m)^  ([a-z]+)\b",
                                      help_text(binary).split("Options")[0])
                self.assertIn("submit", commands)
                for command in commands:
                    options |= long_options(help_text(binary, command))
            _, text = rendered(page)
            with self.subTest(page=page):
                self.assertGreater(len(options), 3)
                missing = sorted(o for o in options
                                 if not re.search(r"(?<![\w-])%s(?![\w-])"
                                                  % re.escape(o), text))
                self.assertEqual(missing, [], "%s documents not all of %s's "
                                 "options" % (page, binary))

    def test_configuration_keys_and_variables_are_documented(self):
        # Every SHOAL_ variable a daemon's --help names is in its page.
        for page in ("shoal-controller.8", "shoal-worker.8"):
            binary = PAGES[page]
            variables = set(re.findall(r"SHOAL_[A-Z0-9_]+", help_text(binary)))
            _, text = rendered(page)
            with self.subTest(page=page):
                self.assertTrue(variables)
                self.assertEqual(sorted(v for v in variables if v not in text),
                                 [])
                self.assertIn("/etc/shoal/%s.yaml"
                              % binary.split("-")[1], text)


class OperationsDocTest(unittest.TestCase):
    """docs/operations.md lists every configuration key of each daemon."""

    def test_every_key_is_in_the_tables(self):
        with open(os.path.join(SOURCE_DIR, "docs", "operations.md")) as f:
            doc = f.read()
        section = doc.split("## Configuration", 1)[1].split("\n## ", 1)[0]
        flag_only = {"--check", "--compact-state", "--healthcheck",
                     "--config", "--help", "--version"}
        for binary in ("shoal-controller", "shoal-worker"):
            if not os.path.exists(os.path.join(BUILD_DIR, binary)):
                self.skipTest("%s is not built" % binary)
            keys = sorted(o[2:] for o in long_options(help_text(binary))
                          if o not in flag_only)
            with self.subTest(binary=binary):
                self.assertGreater(len(keys), 5)
                self.assertEqual([k for k in keys
                                  if "| `%s` |" % k not in section], [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
