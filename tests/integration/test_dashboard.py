"""The web dashboard at `/`: its files and headers over HTTP, and the page
itself in Debian's headless Chromium (tests/browser/dashboard.mjs, driven
by playwright-core) against a real controller and two workers.

The browser checks need /usr/bin/chromium (Debian's `chromium`, installed
by scripts/deps.sh) and tests/browser/node_modules (`npm ci` there, run by
scripts/test.sh). Under scripts/test.sh (SHOAL_REQUIRE_TOOLS=1) a
missing piece fails the test; run by hand without them, it skips and
says why. Screenshots go to <build>/artifacts/dashboard*.png.
"""
import os
import re
import shutil
import subprocess
import unittest

from harness import BUILD_DIR, SOURCE_DIR, ClusterTest

BROWSER_DIR = os.path.join(SOURCE_DIR, "tests", "browser")
SCRIPT = os.path.join(BROWSER_DIR, "dashboard.mjs")
PLAYWRIGHT = os.path.join(BROWSER_DIR, "node_modules", "playwright-core")
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = os.path.join(BUILD_DIR, "artifacts")
TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools")
TOKEN = "dashboard-test-token-5f1c"

DEFINITIONS = """
tasks:
  fan-out:
    input:
      TOOLS: {source: environment}
      modes: {source: parameter}
    exec_command: /usr/bin/python3
    exec_args: ["{TOOLS}/spawn.py", "--modes", "{modes}"]
  work:
    input:
      TOOLS: {source: environment}
      MARKERS: {source: environment}
      item: {source: parameter, default: "0"}
      mode: {source: parameter, default: ok}
    exec_command: /usr/bin/python3
    exec_args: ["{TOOLS}/gate.py", "{MARKERS}", "w-{item}", "{mode}"]
  say:
    input:
      greeting: {source: parameter}
      who: {source: parameter}
    exec_command: /bin/echo
    exec_args: ["{greeting}", "{who}"]
  quick:
    input:
      item: {source: parameter, default: "0"}
      mode: {source: parameter, default: ok}
    exec_command: /bin/true
jobs:
  fan:
    name: Fan out
    description: One task per mode, then a summary task
    input:
      modes: {source: parameter}
    stages:
      - {name: Download Data, task_class: work, spawn_task: fan-out}
      - {name: Summarize, task_class: work}
  greet:
    name: Greeting
    description: Echoes a greeting; needs an Authorization header
    input:
      greeting: {source: parameter, description: What to say}
      who: {source: parameter, default: world}
      auth: {source: http-header, key: Authorization}
    stages:
      - {name: Say Hello, task_class: say}
  wide:
    name: Wide fan-out
    description: More tasks than the dashboard loads at once
    input:
      modes: {source: parameter}
    stages:
      - {name: Spread, task_class: quick, spawn_task: fan-out}
"""


def browser_missing():
    """Why the browser checks cannot run here, or None."""
    if not os.access(CHROMIUM, os.X_OK):
        return "%s not found (Debian package chromium, scripts/deps.sh)" % CHROMIUM
    if not shutil.which("node"):
        return "node not found"
    if not os.path.isdir(PLAYWRIGHT):
        return ("%s not found (run `npm ci` in tests/browser)" % PLAYWRIGHT)
    return None


class DashboardFilesTest(ClusterTest):
    """The page and its files: types, caching and the security policy."""
    definitions = DEFINITIONS

    def setUp(self):
        self.cluster = self.make_cluster()
        self.cluster.start_controller(extra=("--ephemeral",))

    def test_page_and_assets_are_served_with_strict_headers(self):
        want = {
            "/": "text/html; charset=utf-8",
            "/ui/app.js": "text/javascript; charset=utf-8",
            "/ui/style.css": "text/css; charset=utf-8",
            "/ui/icon.svg": "image/svg+xml",
        }
        for path, content_type in want.items():
            resp = self.cluster.get(path)
            self.assertEqual(resp.status, 200, (path, resp))
            self.assertEqual(resp.content_type, content_type, path)
            self.assertEqual(resp.headers.get("Cache-Control"), "no-cache", path)
            csp = resp.headers.get("Content-Security-Policy", "")
            self.assertIn("default-src 'self'", csp, path)
            self.assertIn("script-src 'self'", csp, path)
            self.assertNotIn("unsafe-inline", csp, path)
            self.assertNotIn("unsafe-eval", csp, path)
            self.assertIn("frame-ancestors 'none'", csp, path)
            self.assertEqual(resp.headers.get("X-Content-Type-Options"), "nosniff")
            self.assertRegex(resp.headers.get("ETag", ""), r'^"[0-9a-f]{64}"$')
            # A revalidation with the same ETag is answered without a body.
            again = self.cluster.get(path, headers={"If-None-Match": resp.headers["ETag"]})
            self.assertEqual(again.status, 304, path)
            self.assertEqual(again.body, "")

    def test_page_has_no_inline_script_or_external_resource(self):
        html = self.cluster.get("/").body
        self.assertEqual(re.findall(r"<script(?![^>]*\bsrc=)", html), [],
                         "inline script in the page")
        self.assertNotRegex(html, r"\son[a-z]+=", "inline event handler")
        self.assertNotRegex(html, r"\sstyle=", "inline style")
        for url in re.findall(r'(?:src|href)="([^"#]+)"', html):
            self.assertTrue(url.startswith("/ui/"), url)
        css = self.cluster.get("/ui/style.css").body
        self.assertNotIn("@import", css)
        self.assertNotIn("url(", css)

    def test_unknown_dashboard_file_is_a_problem(self):
        resp = self.cluster.get("/ui/nope.js")
        self.assertProblem(resp, 404)
        resp = self.cluster.request("POST", "/", raw=b"")
        self.assertProblem(resp, 405)
        # Only the exact paths: civetweb folds "//" and "/./", we do not.
        for path in ("//", "/ui//app.js", "/ui/./app.js", "/ui/../ui/app.js"):
            self.assertProblem(self.cluster.get(path), 404)


class DashboardBrowserTest(ClusterTest):
    """The page in Chromium against a controller and two workers."""
    definitions = DEFINITIONS

    def setUp(self):
        why = browser_missing()
        if why:
            if os.environ.get("SHOAL_REQUIRE_TOOLS") == "1":
                self.fail("the browser test cannot run: " + why)
            self.skipTest("the browser test cannot run: %s; scripts/test.sh "
                          "installs what it needs" % why)
        os.makedirs(ARTIFACTS, exist_ok=True)

    def start_cluster(self, token=None):
        cluster = self.make_cluster()
        extra = ["--ephemeral"]
        if token:
            path = os.path.join(cluster.tmp, "token")
            with open(path, "w") as f:
                f.write(token + "\n")
            extra += ["--api-token-file", path]
            # the harness's own API calls carry the token too
            plain = cluster.request

            def request(method, route, body=None, headers=None, raw=None):
                hdrs = dict(headers or {})
                hdrs.setdefault("X-Shoal-Token", token)
                return plain(method, route, body=body, headers=hdrs, raw=raw)
            cluster.request = request
        cluster.start_controller(extra=extra)
        markers = os.path.join(cluster.tmp, "markers")
        os.makedirs(markers)
        worker_env = {"TOOLS": TOOLS, "MARKERS": markers, "GATE_TIMEOUT": "120"}
        cluster.start_worker("w1", slots=2, env=worker_env)
        cluster.start_worker("w2", slots=2, env=worker_env)
        return cluster, markers

    def run_browser(self, cluster, mode, release=None, token=None):
        failure = os.path.join(ARTIFACTS, "dashboard-failure-%s.png" % mode)
        if os.path.exists(failure):
            os.remove(failure)     # a picture of an earlier failed run
        env = dict(os.environ,
                   SHOAL_URL="http://127.0.0.1:%d" % cluster.http_port,
                   DASH_MODE=mode, DASH_ARTIFACTS=ARTIFACTS,
                   DASH_RELEASE=release or "", DASH_TOKEN=token or "")
        proc = subprocess.run(["node", SCRIPT], cwd=BROWSER_DIR, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=240)
        output = proc.stdout.decode(errors="replace")
        print(output)
        self.assertEqual(proc.returncode, 0,
                         "the dashboard check failed (screenshots in %s):\n%s"
                         % (ARTIFACTS, output))

    def test_live_jobs_tasks_workers_and_form(self):
        cluster, markers = self.start_cluster()
        release = os.path.join(markers, ".release")
        # Should a check fail while the gated tasks run, let them end so
        # the workers stop cleanly.
        self.addCleanup(lambda: open(release, "a").close())
        self.run_browser(cluster, "main", release=release)
        self.assertTrue(os.path.getsize(os.path.join(ARTIFACTS, "dashboard.png")) > 0)

    def test_asks_for_the_token_and_keeps_it(self):
        cluster, markers = self.start_cluster(token=TOKEN)
        # The page and its files are open; the API is not.
        for path in ("/", "/ui/app.js"):
            self.assertEqual(cluster.request("GET", path, headers={
                "X-Shoal-Token": "wrong"}).status, 200, path)
        self.assertProblem(cluster.request("GET", "/api/v1/workers", headers={
            "X-Shoal-Token": "wrong"}), 401)
        self.run_browser(cluster, "token", token=TOKEN)


if __name__ == "__main__":
    unittest.main()
