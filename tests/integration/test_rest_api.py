"""The REST API of a real controller: every route, every refusal.

Each error is checked for its status, the problem+json content type and
body, and the field it names. Nothing here needs a worker.
"""
import json
import os
import socket
import unittest

from harness import ClusterTest

DEFINITIONS = """
tasks:
  export-data:
    input:
      data_id: {source: parameter}
      basic_auth: {source: parameter}
      level: {source: parameter, default: info}
    exec_command: /bin/true
    exec_args: ["{data_id}", "{basic_auth}", "{level}"]
jobs:
  request-data:
    input:
      data_id: {source: parameter}
      level: {source: parameter, default: info}
      basic_auth: {source: http-header, key: Authorization}
    stages:
      - {name: Request Data, task_class: export-data}
"""

AUTH = {"Authorization": "Basic c2VjcmV0LXZhbHVl"}


class RestApiTest(ClusterTest):
    definitions = DEFINITIONS

    @classmethod
    def setUpClass(cls):
        from harness import Cluster
        cls.c = Cluster(DEFINITIONS)
        cls.c.start_controller()

    @classmethod
    def tearDownClass(cls):
        import shutil
        problems = cls.c.close()
        if problems:
            print(cls.c.dump_logs())
        shutil.rmtree(cls.c.tmp, ignore_errors=True)
        if problems:
            raise AssertionError("; ".join(problems))

    def submit_raw(self, body, headers=AUTH):
        return self.c.post("/api/v1/jobs", body, headers=headers)

    # ---- the happy paths ---------------------------------------------
    def test_health_and_readiness(self):
        self.assertEqual(self.c.get("/healthz").json(), {"status": "ok"})
        self.assertEqual(self.c.get("/readyz").status, 200)

    def test_definitions_lists_classes_and_inputs(self):
        defs = self.c.get("/api/v1/definitions").json()
        self.assertEqual([t["id"] for t in defs["tasks"]], ["export-data"])
        job = defs["jobs"][0]
        self.assertEqual(job["id"], "request-data")
        header = [i for i in job["inputs"] if i["name"] == "basic_auth"][0]
        self.assertEqual(header["source"], "http-header")
        self.assertEqual(header["key"], "Authorization")

    def test_submit_answers_201_with_location_and_masked_secret(self):
        resp = self.submit_raw({"job": "request-data",
                                "params": {"data_id": 42}})
        self.assertEqual(resp.status, 201, resp)
        job = resp.json()
        self.assertEqual(resp.headers["Location"], "/api/v1/jobs/" + job["id"])
        self.assertEqual(job["state"], "running")
        self.assertEqual(job["params"], {"data_id": "42", "level": "info",
                                         "basic_auth": "***"})
        self.assertNotIn("c2VjcmV0", resp.body)
        for key in ("id", "job", "state", "params", "created_at", "started_at",
                    "finished_at", "error", "stages"):
            self.assertIn(key, job)
        stage = job["stages"][0]
        self.assertEqual(stage["name"], "Request Data")
        self.assertEqual(stage["tasks"]["total"], 1)
        got = self.c.get(resp.headers["Location"]).json()
        self.assertEqual(got["id"], job["id"])
        tasks = self.c.get(resp.headers["Location"] + "/tasks")
        self.assertEqual(tasks.status, 200)
        self.assertNotIn("c2VjcmV0", tasks.body)
        task = tasks.json()["tasks"][0]
        for key in ("id", "stage", "index", "state", "exit_code", "attempts",
                    "worker", "params", "error", "duration_ms"):
            self.assertIn(key, task)
        self.assertEqual(task["params"]["basic_auth"], "***")

    def test_created_job_starts_once(self):
        resp = self.submit_raw({"job": "request-data", "start": False,
                                "params": {"data_id": "1"}})
        self.assertEqual(resp.status, 201)
        job = resp.json()
        self.assertEqual(job["state"], "created")
        path = "/api/v1/jobs/%s/start" % job["id"]
        started = self.c.post(path)
        self.assertEqual(started.status, 200, started)
        self.assertEqual(started.json()["state"], "running")
        self.assertProblem(self.c.post(path), 409)

    def test_jobs_list_is_newest_first_with_a_cursor(self):
        ids = [self.submit_raw({"job": "request-data", "start": False,
                                "params": {"data_id": str(i)}}).json()["id"]
               for i in range(3)]
        page = self.c.get("/api/v1/jobs?state=created&limit=2").json()
        self.assertEqual([j["id"] for j in page["jobs"]], ids[::-1][:2])
        self.assertIsNotNone(page["next"])
        rest = self.c.get("/api/v1/jobs?state=created&limit=2&cursor="
                          + page["next"]).json()
        self.assertEqual(rest["jobs"][0]["id"], ids[0])
        for job in page["jobs"] + rest["jobs"]:
            self.assertEqual(job["state"], "created")

    def test_workers_list_is_empty_without_workers(self):
        self.assertEqual(self.c.get("/api/v1/workers").json(),
                         {"workers": []})

    def job_dirs(self):
        return set(os.listdir(os.path.join(self.c.data_dir, "jobs")))

    def test_same_idempotency_key_and_body_return_the_same_job(self):
        headers = dict(AUTH, **{"Idempotency-Key": "order-17"})
        body = {"job": "request-data", "start": False,
                "params": {"data_id": "17"}}
        dirs = self.job_dirs()
        first = self.submit_raw(body, headers=headers)
        self.assertEqual(first.status, 201, first)
        again = self.submit_raw(body, headers=headers)
        self.assertEqual(again.status, 201, again)
        self.assertEqual(again.json()["id"], first.json()["id"])
        self.assertEqual(again.headers.get("Idempotent-Replayed"), "true")
        self.assertEqual(again.headers["Location"], first.headers["Location"])
        other = dict(body, params={"data_id": "18"})
        self.assertProblem(self.submit_raw(other, headers=headers), 422,
                           "header Idempotency-Key")
        # The job's directory is there; the replay and the refusal left
        # none of their own behind.
        self.assertEqual(self.job_dirs() - dirs, {first.json()["id"]})
        fresh = self.submit_raw(body, headers=dict(
            AUTH, **{"Idempotency-Key": "order-18"}))
        self.assertNotEqual(fresh.json()["id"], first.json()["id"])
        self.assertEqual(self.job_dirs() - dirs,
                         {first.json()["id"], fresh.json()["id"]})

    def test_a_job_directory_the_volume_refuses_is_a_503_and_no_job(self):
        jobs = os.path.join(self.c.data_dir, "jobs")
        aside = jobs + ".aside"
        before = self.c.get("/api/v1/jobs?limit=1000").json()["jobs"]
        os.rename(jobs, aside)
        try:
            with open(jobs, "w"):
                pass   # jobs/<id> cannot be made under a file
            resp = self.submit_raw({"job": "request-data", "start": False,
                                    "params": {"data_id": "1"}})
            self.assertProblem(resp, 503)
            self.assertEqual(resp.json()["title"],
                             "Shared volume unavailable")
            self.assertIn(jobs, resp.json()["detail"])
        finally:
            os.remove(jobs)
            os.rename(aside, jobs)
        after = self.c.get("/api/v1/jobs?limit=1000").json()["jobs"]
        self.assertEqual(len(after), len(before))
        resp = self.submit_raw({"job": "request-data", "start": False,
                                "params": {"data_id": "1"}})
        self.assertEqual(resp.status, 201, resp)
        self.assertTrue(os.path.isdir(self.c.job_dir(resp.json()["id"])))

    def test_bad_idempotency_key_is_400(self):
        resp = self.submit_raw({"job": "request-data",
                                "params": {"data_id": "1"}},
                               headers=dict(AUTH, **{"Idempotency-Key": "a b"}))
        self.assertProblem(resp, 400, "header Idempotency-Key")

    # ---- refusals ----------------------------------------------------------
    def test_unknown_job_class_is_404_naming_job(self):
        self.assertProblem(self.submit_raw({"job": "nope"}), 404, "job")

    def test_missing_job_field_is_400(self):
        self.assertProblem(self.submit_raw({"params": {}}), 400, "job")

    def test_missing_param_is_400_naming_it(self):
        self.assertProblem(self.submit_raw({"job": "request-data"}), 400,
                           "params.data_id")

    def test_undeclared_param_is_400_naming_it(self):
        self.assertProblem(self.submit_raw({"job": "request-data", "params":
                                            {"data_id": "1", "extra": "x"}}),
                           400, "params.extra")

    def test_non_scalar_param_is_400(self):
        self.assertProblem(self.submit_raw({"job": "request-data", "params":
                                            {"data_id": [1]}}),
                           400, "params.data_id")

    def test_params_not_an_object_is_400(self):
        self.assertProblem(self.submit_raw({"job": "request-data",
                                            "params": "x"}), 400, "params")

    def test_missing_header_input_is_400_naming_the_header(self):
        self.assertProblem(self.submit_raw({"job": "request-data", "params":
                                            {"data_id": "1"}}, headers={}),
                           400, "header Authorization")

    def test_header_input_given_as_param_is_400(self):
        self.assertProblem(self.submit_raw({"job": "request-data", "params":
                                            {"data_id": "1",
                                             "basic_auth": "x"}}),
                           400, "params.basic_auth")

    def test_malformed_json_is_400(self):
        resp = self.c.post("/api/v1/jobs", raw=b'{"job": ', headers=AUTH)
        self.assertProblem(resp, 400, "body")

    def test_body_not_an_object_is_400(self):
        self.assertProblem(self.c.post("/api/v1/jobs", raw=b'[1, 2]'), 400,
                           "body")

    def test_unknown_body_field_is_400_naming_it(self):
        self.assertProblem(self.submit_raw({"job": "request-data",
                                            "parms": {}}), 400, "parms")

    def test_start_not_boolean_is_400(self):
        self.assertProblem(self.submit_raw({"job": "request-data",
                                            "start": "yes"}), 400, "start")

    def test_body_over_one_mib_is_413(self):
        big = json.dumps({"job": "request-data",
                          "params": {"data_id": "x" * (1024 * 1024)}})
        self.assertProblem(self.c.post("/api/v1/jobs", raw=big.encode()), 413)

    def test_unknown_job_is_404(self):
        for path in ("/api/v1/jobs/0123456789abcdef",
                     "/api/v1/jobs/0123456789abcdef/tasks",
                     "/api/v1/jobs/..%2f..%2fetc/tasks"):
            self.assertProblem(self.c.get(path), 404)
        self.assertProblem(self.c.post("/api/v1/jobs/0123456789abcdef/start"),
                           404, "id")

    def test_unknown_task_log_is_404(self):
        job = self.submit_raw({"job": "request-data", "start": False,
                               "params": {"data_id": "1"}}).json()
        base = "/api/v1/jobs/%s/tasks/" % job["id"]
        self.assertProblem(self.c.get(base + "99/log"), 404, "task_id")
        self.assertProblem(self.c.get(base + "x/log"), 404, "task_id")

    def test_unknown_path_is_404_and_wrong_method_405(self):
        self.assertProblem(self.c.get("/api/v2/jobs"), 404)
        self.assertProblem(self.c.get("/index.html"), 404)
        wrong = self.c.request("DELETE", "/api/v1/jobs")
        self.assertProblem(wrong, 405)
        self.assertEqual(wrong.headers.get("Allow"), "POST, GET")
        self.assertProblem(self.c.request("PUT", "/healthz"), 405)

    def test_bad_query_parameters_are_400(self):
        self.assertProblem(self.c.get("/api/v1/jobs?state=done"), 400, "state")
        self.assertProblem(self.c.get("/api/v1/jobs?limit=0"), 400, "limit")
        self.assertProblem(self.c.get("/api/v1/jobs?limit=x"), 400, "limit")
        self.assertProblem(self.c.get("/api/v1/jobs?cursor=-1"), 400, "cursor")

    def test_hostile_request_lines_get_4xx_and_server_stays_up(self):
        lines = [b"GET /" + b"/" * 8000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                 b"GET " + b"/" * 300 + b"x HTTP/1.1\r\nHost: x\r\n\r\n",
                 b"GET /api/v1/jobs/%00 HTTP/1.1\r\nHost: x\r\n\r\n",
                 b"BREW /api/v1/jobs HTTP/1.1\r\nHost: x\r\n\r\n",
                 b"\x00\x01\x02garbage\r\n\r\n"]
        for line in lines:
            with socket.create_connection(("127.0.0.1", self.c.http_port),
                                          timeout=10) as s:
                s.sendall(line)
                answer = s.recv(200)
            if answer:
                status = int(answer.split(b" ")[1])
                self.assertTrue(400 <= status < 500, (line[:40], answer))
        self.assertEqual(self.c.get("/healthz").status, 200)
        self.assertIsNone(self.c.controller.poll())


TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools")

FAN_DEFINITIONS = """
tasks:
  spawn:
    input:
      TOOLS: {source: environment}
      count: {source: parameter}
    exec_command: /usr/bin/python3
    exec_args: ["{TOOLS}/spawn.py", "{count}"]
  act:
    input:
      item: {source: parameter, default: "0"}
    exec_command: /bin/sh
    exec_args: ["-c", "case {item} in *7) exit 1;; esac"]
jobs:
  fan:
    input:
      count: {source: parameter}
    stages:
      - {name: spread, task_class: act, spawn_task: spawn, job_failed_on_error: false}
      - {name: after, task_class: act}
"""

FAN_COUNT = 300


class TaskPagesTest(ClusterTest):
    """A job of FAN_COUNT spawned tasks (those whose item ends in 7 fail),
    read page by page."""

    @classmethod
    def setUpClass(cls):
        from harness import Cluster
        cls.c = Cluster(FAN_DEFINITIONS)
        cls.c.start_controller()
        cls.c.start_worker("w1", slots=8, env={"TOOLS": TOOLS})
        job = cls.c.submit("fan", {"count": FAN_COUNT})
        cls.job = cls.c.wait_job(job["id"])
        cls.base = "/api/v1/jobs/%s/tasks" % job["id"]

    @classmethod
    def tearDownClass(cls):
        import shutil
        problems = cls.c.close()
        if problems:
            print(cls.c.dump_logs())
        shutil.rmtree(cls.c.tmp, ignore_errors=True)
        if problems:
            raise AssertionError("; ".join(problems))

    def walk(self, query):
        """Every page of the task list for `query`: (tasks, pages)."""
        tasks, pages, cursor = [], 0, None
        while True:
            path = self.base + "?" + query
            if cursor is not None:
                path += "&cursor=" + cursor
            resp = self.c.get(path)
            self.assertEqual(resp.status, 200, resp)
            page = resp.json()
            self.assertEqual(page["job"], self.job["id"])
            self.assertEqual(page["total"], self.total())
            tasks += page["tasks"]
            pages += 1
            self.assertLess(pages, 1000)
            if page["next"] is None:
                return tasks, pages
            self.assertIsInstance(page["next"], str)
            cursor = page["next"]

    def total(self):
        return sum(s["tasks"]["total"] for s in self.job["stages"])

    def test_job_ran_the_whole_fan_out(self):
        self.assertEqual(self.job["state"], "succeeded", self.job)
        self.assertEqual(self.total(), FAN_COUNT + 2)

    def test_pages_cover_every_task_once_in_id_order(self):
        tasks, pages = self.walk("limit=37")
        self.assertEqual([t["id"] for t in tasks], list(range(self.total())))
        self.assertEqual(pages, -(-self.total() // 37))
        spawned = [t for t in tasks if t["kind"] == "task"
                   and t["stage"] == "spread"]
        self.assertEqual(sorted(int(t["params"]["item"]) for t in spawned),
                         list(range(FAN_COUNT)))

    def test_default_page_holds_the_small_job_and_says_no_more(self):
        page = self.c.get(self.base).json()
        self.assertEqual(len(page["tasks"]), self.total())
        self.assertIsNone(page["next"])
        self.assertEqual(page["total"], self.total())

    def test_a_short_page_points_at_the_next_task(self):
        resp = self.c.get(self.base + "?limit=10")
        self.assertIn("X-Shoal-Event-Id", resp.headers)
        page = resp.json()
        self.assertEqual([t["id"] for t in page["tasks"]], list(range(10)))
        self.assertEqual(page["next"], "10")
        self.assertEqual(self.c.get(self.base + "?limit=10000").status, 200)

    def test_state_filter_gives_only_failed_tasks(self):
        tasks, _ = self.walk("state=failed&limit=7")
        want = [i for i in range(FAN_COUNT) if str(i).endswith("7")]
        self.assertEqual(sorted(int(t["params"]["item"]) for t in tasks), want)
        self.assertTrue(all(t["state"] == "failed" for t in tasks))
        ids = [t["id"] for t in tasks]
        self.assertEqual(ids, sorted(ids))
        spread = self.job["stages"][0]["tasks"]
        self.assertEqual(len(tasks), spread["failed"])

    def test_stage_filter_by_name_or_index(self):
        by_name, _ = self.walk("stage=after")
        by_index, _ = self.walk("stage=1")
        self.assertEqual(len(by_name), 1)
        self.assertEqual(by_name, by_index)
        self.assertEqual(by_name[0]["stage"], "after")
        spread, _ = self.walk("stage=spread&state=succeeded&limit=100")
        self.assertEqual(len(spread), FAN_COUNT + 1 - FAN_COUNT // 10)

    def test_bad_task_list_queries_are_400_naming_the_parameter(self):
        for query, field in (("limit=0", "limit"), ("limit=abc", "limit"),
                             ("limit=10001", "limit"), ("limit=", "limit"),
                             ("cursor=-1", "cursor"), ("cursor=x", "cursor"),
                             ("cursor=99999999999", "cursor"),
                             ("state=done", "state"), ("state=", "state"),
                             ("stage=nope", "stage"), ("stage=2", "stage"),
                             ("stage=" + "s" * 400, "stage")):
            self.assertProblem(self.c.get(self.base + "?" + query), 400,
                               field)
        self.assertProblem(self.c.get(
            "/api/v1/jobs/0123456789abcdef/tasks?limit=5"), 404, "id")

    def test_cursor_past_the_end_is_an_empty_last_page(self):
        page = self.c.get(self.base + "?cursor=%d" % self.total()).json()
        self.assertEqual(page["tasks"], [])
        self.assertIsNone(page["next"])


class ApiTokenTest(ClusterTest):
    definitions = DEFINITIONS

    def setUp(self):
        self.c = self.make_cluster()
        token_file = os.path.join(self.c.tmp, "token")
        with open(token_file, "w") as f:
            f.write("s3cret-token-0123456789\n")
        self.c.start_controller(["--api-token-file", token_file])

    def test_api_routes_need_the_token(self):
        for path in ("/api/v1/jobs", "/api/v1/definitions", "/api/v1/workers"):
            self.assertProblem(self.c.get(path), 401, "header X-Shoal-Token")
            wrong = self.c.get(path, headers={"X-Shoal-Token": "s3cret"})
            self.assertProblem(wrong, 401, "header X-Shoal-Token")
            good = self.c.get(path, headers={
                "X-Shoal-Token": "s3cret-token-0123456789"})
            self.assertEqual(good.status, 200, good)

    def test_submit_with_token_works_and_authorization_stays_a_job_input(self):
        resp = self.c.post("/api/v1/jobs", {"job": "request-data",
                                            "params": {"data_id": "1"}},
                           headers=dict(AUTH, **{
                               "X-Shoal-Token": "s3cret-token-0123456789"}))
        self.assertEqual(resp.status, 201, resp)
        self.assertEqual(resp.json()["params"]["basic_auth"], "***")

    def test_health_routes_stay_open(self):
        self.assertEqual(self.c.get("/healthz").status, 200)
        self.assertEqual(self.c.get("/readyz").status, 200)


if __name__ == "__main__":
    unittest.main(verbosity=2)
