"""docs/openapi.yaml: it parses, lints clean, covers every route, and a
real controller's answers match the schemas it declares.

The Redocly lint runs only when tests/openapi/node_modules holds the CLI
(`npm ci` in tests/openapi); the live checks need python3-jsonschema and
python3-yaml (scripts/deps.sh installs both).
"""
import copy
import os
import re
import shutil
import subprocess
import unittest

import yaml

from harness import SOURCE_DIR, Cluster, wait_for

SPEC_PATH = os.path.join(SOURCE_DIR, "docs", "openapi.yaml")
ROUTES_PATH = os.path.join(SOURCE_DIR, "src", "controller", "http_api.c")
LINT_DIR = os.path.join(SOURCE_DIR, "tests", "openapi")
REDOCLY = os.path.join(LINT_DIR, "node_modules", ".bin", "redocly")

try:
    import jsonschema
except ImportError:           # the live checks skip with a message
    jsonschema = None

DEFINITIONS = """
tasks:
  greet:
    input:
      who: {source: parameter}
      token: {source: parameter}
    exec_command: /bin/echo
    exec_args: ["hello", "{who}"]
jobs:
  hello:
    name: Say hello
    input:
      who: {source: parameter, default: world}
      token: {source: http-header, key: X-Demo-Token}
    stages:
      - {name: Greet, task_class: greet}
"""

HEADERS = {"X-Demo-Token": "demo-secret-value"}


def load_spec():
    with open(SPEC_PATH, encoding="utf-8") as f:
        return yaml.safe_load(f)


def route_table():
    """(method, pattern) of every route in http_api.c's s_routes table."""
    with open(ROUTES_PATH, encoding="utf-8") as f:
        source = f.read()
    table = source[source.index("s_routes[] = {"):]
    table = table[:table.index("};")]
    return re.findall(r'\{\s*"([A-Z]+)",\s*"([^"]+)"', table)


def inline_refs(node, spec, seen=()):
    """`node` with every local $ref replaced by what it points at."""
    if isinstance(node, list):
        return [inline_refs(item, spec, seen) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise AssertionError("non-local $ref %r in %s" % (ref, SPEC_PATH))
        if ref in seen:
            raise AssertionError("recursive $ref %r in %s" % (ref, SPEC_PATH))
        target = spec
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        merged = dict(copy.deepcopy(target))
        merged.update({k: v for k, v in node.items() if k != "$ref"})
        return inline_refs(merged, spec, seen + (ref,))
    return {key: inline_refs(value, spec, seen) for key, value in node.items()}


class OpenApiDocumentTest(unittest.TestCase):
    def test_parses_as_openapi_3_1(self):
        spec = load_spec()
        self.assertIsInstance(spec, dict, "%s is not a YAML mapping" % SPEC_PATH)
        version = str(spec.get("openapi", ""))
        self.assertRegex(version, r"^3\.1\.\d+$",
                         "%s declares openapi %r, not 3.1.x" % (SPEC_PATH, version))
        for key in ("info", "paths", "components"):
            self.assertIn(key, spec)

    def test_every_route_is_described(self):
        spec = load_spec()
        routes = route_table()
        self.assertGreater(len(routes), 10, "cannot read the route table")
        described = set()
        for method, pattern in routes:
            # The spec names the {} segments; compare with them blanked.
            matches = [p for p in spec["paths"]
                       if re.sub(r"\{[^}]*\}", "{}", p) == pattern]
            self.assertEqual(len(matches), 1,
                             "route %s %s: not in %s" % (method, pattern,
                                                         SPEC_PATH))
            self.assertIn(method.lower(), spec["paths"][matches[0]],
                          "route %s %s: no %s operation in %s"
                          % (method, pattern, method, SPEC_PATH))
            described.add((method.lower(), matches[0]))
        for path, item in spec["paths"].items():
            for method in item:
                if method in ("get", "put", "post", "delete", "patch"):
                    self.assertIn((method, path), described,
                                  "%s %s is in the spec but not in the route "
                                  "table" % (method.upper(), path))

    def test_token_applies_to_api_paths_only(self):
        spec = load_spec()
        for path, item in spec["paths"].items():
            for method, op in item.items():
                if not isinstance(op, dict) or "responses" not in op:
                    continue
                names = [name for req in op.get("security", spec.get("security", []))
                         for name in req]
                if path.startswith("/api/"):
                    self.assertEqual(names, ["ShoalToken"], (method, path))
                    self.assertIn("401", op["responses"], (method, path))
                else:
                    self.assertEqual(names, [], (method, path))

    def test_redocly_lint(self):
        if not os.access(REDOCLY, os.X_OK) or not shutil.which("node"):
            self.skipTest("Redocly CLI not installed: run `npm ci` in "
                          "tests/openapi to lint docs/openapi.yaml")
        env = dict(os.environ, REDOCLY_TELEMETRY="off",
                   REDOCLY_SUPPRESS_UPDATE_NOTICE="true", NO_COLOR="1")
        proc = subprocess.run(
            [REDOCLY, "lint", "--format", "stylish", SPEC_PATH],
            cwd=LINT_DIR, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, timeout=180)
        output = proc.stdout.decode(errors="replace")
        self.assertEqual(proc.returncode, 0,
                         "redocly lint found errors in %s:\n%s"
                         % (SPEC_PATH, output))


@unittest.skipIf(jsonschema is None,
                 "python3-jsonschema is missing (scripts/deps.sh installs it)")
class OpenApiLiveTest(unittest.TestCase):
    """A real controller and worker; each answer is checked against the
    schema the spec gives for that operation and status."""

    @classmethod
    def setUpClass(cls):
        cls.spec = load_spec()
        cls.c = Cluster(DEFINITIONS)
        try:
            cls.c.start_controller()
            cls.c.start_worker("openapi-worker-1", slots=1)
        except Exception:
            print(cls.c.dump_logs())
            cls.c.close()
            shutil.rmtree(cls.c.tmp, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        problems = cls.c.close()
        if problems:
            print(cls.c.dump_logs())
        shutil.rmtree(cls.c.tmp, ignore_errors=True)
        if problems:
            raise AssertionError("; ".join(problems))

    # ---- checking against the spec ------------------------------------
    def operation(self, method, template):
        paths = self.spec["paths"]
        self.assertIn(template, paths, "%s is not in %s" % (template, SPEC_PATH))
        op = paths[template].get(method.lower())
        self.assertIsNotNone(op, "%s %s is not in %s" % (method, template,
                                                         SPEC_PATH))
        return op

    def check(self, method, template, resp, status):
        """Asserts `resp` has `status`, that the spec declares that status
        and content type for the operation, and that the body validates
        against the declared schema. Returns the parsed body."""
        where = "%s %s -> %d" % (method, template, resp.status)
        self.assertEqual(resp.status, status,
                         "%s: expected %d: %r" % (where, status, resp))
        responses = self.operation(method, template)["responses"]
        self.assertIn(str(status), responses,
                      "%s: status %d is not declared in %s"
                      % (where, status, SPEC_PATH))
        declared = inline_refs(responses[str(status)], self.spec)
        media = resp.content_type.split(";")[0].strip()
        content = declared.get("content", {})
        self.assertIn(media, content,
                      "%s: content type %r is not declared (declared: %s)"
                      % (where, media, ", ".join(content) or "none"))
        schema = content[media].get("schema", {})
        if media.endswith("json"):
            body = resp.json()
        elif media.endswith("yaml"):
            body = resp.body
            yaml.safe_load(body)
        else:
            body = resp.body
        validator = jsonschema.Draft202012Validator(schema)
        errors = sorted(validator.iter_errors(body),
                        key=lambda e: list(e.absolute_path))
        if errors:
            lines = []
            for error in errors[:10]:
                at = "".join("[%r]" % p for p in error.absolute_path) or "(root)"
                lines.append("  at %s: %s" % (at, error.message))
            self.fail("%s: the body does not match the schema in %s:\n%s\n"
                      "body: %s" % (where, SPEC_PATH, "\n".join(lines),
                                    resp.body[:2000]))
        return body

    # ---- the calls ---------------------------------------------------
    def submit(self, start=True):
        body = {"job": "hello", "params": {"who": "spec"}}
        if not start:
            body["start"] = False
        resp = self.c.post("/api/v1/jobs", body, headers=HEADERS)
        job = self.check("POST", "/api/v1/jobs", resp, 201)
        self.assertEqual(resp.headers.get("Location"), "/api/v1/jobs/" + job["id"])
        self.assertEqual(job["params"]["token"], "***")
        return job

    def test_health_routes(self):
        self.check("GET", "/healthz", self.c.get("/healthz"), 200)
        self.check("GET", "/readyz", self.c.get("/readyz"), 200)
        self.check("GET", "/metrics", self.c.get("/metrics"), 200)

    def test_definitions(self):
        body = self.check("GET", "/api/v1/definitions",
                          self.c.get("/api/v1/definitions"), 200)
        self.assertEqual([j["id"] for j in body["jobs"]], ["hello"])
        self.assertIsInstance(body["version"], int)
        again = self.check("GET", "/api/v1/definitions/{version}",
                           self.c.get("/api/v1/definitions/%d"
                                      % body["version"]), 200)
        self.assertEqual(again, body)
        problem = self.check("GET", "/api/v1/definitions/{version}",
                             self.c.get("/api/v1/definitions/%d"
                                        % (body["version"] + 1)), 404)
        self.assertEqual(problem["field"], "version")
        for bad in ("0", "x", "-1", "4294967296", "1e3"):
            problem = self.check("GET", "/api/v1/definitions/{version}",
                                 self.c.get("/api/v1/definitions/" + bad),
                                 400)
            self.assertEqual(problem["field"], "version")
        job = self.submit()
        self.assertEqual(job["definitions"], body["version"])

    def test_job_lifecycle(self):
        job = self.submit()
        self.check("GET", "/api/v1/jobs/{id}",
                   self.c.get("/api/v1/jobs/" + job["id"]), 200)
        ended = self.c.wait_job(job["id"], timeout=60)
        self.assertEqual(ended["state"], "succeeded", ended)
        resp = self.c.get("/api/v1/jobs/" + job["id"])
        self.check("GET", "/api/v1/jobs/{id}", resp, 200)
        tasks = self.check("GET", "/api/v1/jobs/{id}/tasks",
                           self.c.get("/api/v1/jobs/%s/tasks" % job["id"]), 200)
        self.assertEqual(len(tasks["tasks"]), 1, tasks)
        self.assertIsNotNone(tasks["tasks"][0]["worker"], tasks)
        self.assertEqual(tasks["total"], 1, tasks)
        self.assertIsNone(tasks["next"], tasks)
        base = "/api/v1/jobs/%s/tasks" % job["id"]
        for query in ("limit=1&cursor=0", "state=succeeded", "stage=0",
                      "cursor=5"):
            self.check("GET", "/api/v1/jobs/{id}/tasks",
                       self.c.get(base + "?" + query), 200)
        for query in ("limit=0", "cursor=-1", "state=done", "stage=nope"):
            self.check("GET", "/api/v1/jobs/{id}/tasks",
                       self.c.get(base + "?" + query), 400)
        log_path = "/api/v1/jobs/%s/tasks/%d/log" % (job["id"],
                                                     tasks["tasks"][0]["id"])
        log = self.check("GET", "/api/v1/jobs/{id}/tasks/{task_id}/log",
                         self.c.get(log_path), 200)
        self.assertIn("hello spec", log)
        part = self.check("GET", "/api/v1/jobs/{id}/tasks/{task_id}/log",
                          self.c.get(log_path, headers={"Range": "bytes=1-"}),
                          206)
        self.assertEqual(part, log[1:])
        self.check("GET", "/api/v1/jobs/{id}/tasks/{task_id}/log",
                   self.c.get(log_path, headers={
                       "Range": "bytes=%d-" % len(log.encode())}), 416)
        # Starting a job that already ran is refused.
        self.check("POST", "/api/v1/jobs/{id}/start",
                   self.c.post("/api/v1/jobs/%s/start" % job["id"]), 409)
        self.check("POST", "/api/v1/jobs/{id}/cancel",
                   self.c.post("/api/v1/jobs/%s/cancel" % job["id"]), 409)
        self.check("POST", "/api/v1/jobs/{id}/retry",
                   self.c.post("/api/v1/jobs/%s/retry" % job["id"]), 409)

    def test_created_job_start_and_cancel(self):
        job = self.submit(start=False)
        self.assertEqual(job["state"], "created")
        self.check("POST", "/api/v1/jobs/{id}/cancel",
                   self.c.post("/api/v1/jobs/%s/cancel" % job["id"]), 200)
        job = self.submit(start=False)
        started = self.check("POST", "/api/v1/jobs/{id}/start",
                             self.c.post("/api/v1/jobs/%s/start" % job["id"]),
                             200)
        self.assertNotEqual(started["state"], "created")
        self.check("POST", "/api/v1/jobs/{id}/start",
                   self.c.post("/api/v1/jobs/%s/start" % job["id"]), 409)
        self.c.wait_job(job["id"], timeout=60)

    def test_idempotent_replay_and_reuse(self):
        key = {"Idempotency-Key": "openapi-test-key-1"}
        headers = dict(HEADERS, **key)
        first = self.c.post("/api/v1/jobs", {"job": "hello"}, headers=headers)
        job = self.check("POST", "/api/v1/jobs", first, 201)
        again = self.c.post("/api/v1/jobs", {"job": "hello"}, headers=headers)
        self.assertEqual(self.check("POST", "/api/v1/jobs", again, 201)["id"],
                         job["id"])
        self.assertEqual(again.headers.get("Idempotent-Replayed"), "true")
        other = self.c.post("/api/v1/jobs", {"job": "hello", "start": False},
                            headers=headers)
        self.check("POST", "/api/v1/jobs", other, 422)
        self.c.wait_job(job["id"], timeout=60)

    def test_list_jobs(self):
        self.submit()
        self.submit()
        page = self.check("GET", "/api/v1/jobs",
                          self.c.get("/api/v1/jobs?limit=1"), 200)
        self.assertEqual(len(page["jobs"]), 1, page)
        self.assertIsInstance(page["next"], str, page)
        self.check("GET", "/api/v1/jobs",
                   self.c.get("/api/v1/jobs?cursor=%s" % page["next"]), 200)
        self.check("GET", "/api/v1/jobs",
                   self.c.get("/api/v1/jobs?state=succeeded&limit=1000"), 200)
        self.check("GET", "/api/v1/jobs",
                   self.c.get("/api/v1/jobs?state=bogus"), 400)
        self.check("GET", "/api/v1/jobs",
                   self.c.get("/api/v1/jobs?limit=0"), 400)

    def test_workers(self):
        body = self.check("GET", "/api/v1/workers",
                          self.c.get("/api/v1/workers"), 200)
        self.assertIn("openapi-worker-1", [w["id"] for w in body["workers"]])

    def test_problems(self):
        problem = self.check("GET", "/api/v1/jobs/{id}",
                             self.c.get("/api/v1/jobs/0000000000000000"), 404)
        self.assertEqual(problem["field"], "id")
        self.check("GET", "/api/v1/jobs/{id}/tasks",
                   self.c.get("/api/v1/jobs/0000000000000000/tasks"), 404)
        self.check("POST", "/api/v1/jobs",
                   self.c.post("/api/v1/jobs", {"job": "no-such-class"},
                               headers=HEADERS), 404)
        problem = self.check("POST", "/api/v1/jobs",
                             self.c.post("/api/v1/jobs",
                                         {"job": "hello", "bogus": 1},
                                         headers=HEADERS), 400)
        self.assertEqual(problem["field"], "bogus")
        problem = self.check("POST", "/api/v1/jobs",
                             self.c.post("/api/v1/jobs", raw=b"{not json",
                                         headers=HEADERS), 400)
        self.assertEqual(problem["field"], "body")
        self.check("POST", "/api/v1/jobs",
                   self.c.post("/api/v1/jobs", {"job": "hello"}), 400)
        self.check("GET", "/api/v1/jobs/{id}",
                   self.c.request("DELETE", "/api/v1/jobs/0000000000000000"),
                   405)

    def test_served_description_is_this_file(self):
        resp = self.c.get("/api/v1/openapi.yaml")
        self.check("GET", "/api/v1/openapi.yaml", resp, 200)
        with open(SPEC_PATH, encoding="utf-8") as f:
            text = f.read()
        self.assertEqual(resp.body, text,
                         "the controller serves another openapi.yaml than "
                         "%s: configure the build again (cmake -S . -B "
                         "<build>) so it compiles the current file in"
                         % SPEC_PATH)


class OpenApiTokenTest(unittest.TestCase):
    """With a token, /api/ paths (the description included) answer the 401
    the spec declares, and the probes stay open."""

    @unittest.skipIf(jsonschema is None,
                     "python3-jsonschema is missing (scripts/deps.sh installs it)")
    def test_unauthorized_problem(self):
        spec = load_spec()
        cluster = Cluster(DEFINITIONS)
        self.addCleanup(shutil.rmtree, cluster.tmp, True)
        token_file = os.path.join(cluster.tmp, "token")
        with open(token_file, "w") as f:
            f.write("openapi-test-token\n")
        try:
            cluster.start_controller(extra=("--api-token-file", token_file))
            schema = inline_refs(
                spec["components"]["responses"]["Unauthorized"], spec)[
                    "content"]["application/problem+json"]["schema"]
            for path in ("/api/v1/jobs", "/api/v1/openapi.yaml"):
                resp = cluster.get(path)
                self.assertEqual(resp.status, 401, "GET %s: %r" % (path, resp))
                self.assertTrue(resp.content_type.startswith(
                    "application/problem+json"), resp)
                try:
                    jsonschema.validate(resp.json(), schema,
                                        cls=jsonschema.Draft202012Validator)
                except jsonschema.ValidationError as e:
                    self.fail("GET %s -> 401: %s" % (path, e.message))
            self.assertEqual(cluster.get("/healthz").status, 200)
            self.assertEqual(cluster.get("/metrics").status, 200)
            ok = cluster.get("/api/v1/openapi.yaml",
                             headers={"X-Shoal-Token": "openapi-test-token"})
            self.assertEqual(ok.status, 200, ok)
        finally:
            problems = cluster.close()
            if problems:
                print(cluster.dump_logs())
                raise AssertionError("; ".join(problems))


if __name__ == "__main__":
    unittest.main(verbosity=2)
