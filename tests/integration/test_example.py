"""The example of the spec, end to end: example/task_job_config.yaml run by
a real controller and two real workers against the loopback file server
of example/bin, exactly as scripts/demo.sh runs it.
"""
import base64
import os
import subprocess
import unittest

from harness import ClusterTest, SOURCE_DIR, free_port, wait_for
import urllib.request

EXAMPLE = os.path.join(SOURCE_DIR, "example")


class ExampleTest(ClusterTest):
    def setUp(self):
        with open(os.path.join(EXAMPLE, "task_job_config.yaml")) as f:
            self.cluster = self.make_cluster(f.read())
        port = free_port()
        self.files_url = "http://127.0.0.1:%d" % port
        self.server = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(EXAMPLE, "bin", "file_server.py"),
             "--port", str(port), "--root", os.path.join(EXAMPLE, "data"),
             "--user", "demo", "--password", "s3cret"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(self.cluster.kill, self.server)
        wait_for(self._server_up, what="the file server")
        env = {"PATH": os.path.join(EXAMPLE, "bin") + ":" + os.environ["PATH"],
               "REST_ENDPOINT": self.files_url, "LOG_LEVEL": "INFO"}
        self.cluster.start_controller()
        self.cluster.start_worker("worker-1", slots=2, env=env)
        self.cluster.start_worker("worker-2", slots=2, env=env)

    def _server_up(self):
        try:
            urllib.request.urlopen(self.files_url + "/datasets/demo.json",
                                   timeout=2).close()
            return True
        except OSError:
            return False

    def auth(self, password):
        token = base64.b64encode(("demo:" + password).encode()).decode()
        return {"Authorization": "Basic " + token}

    def test_request_data_downloads_every_file(self):
        c = self.cluster
        job = c.submit("request-data", {"data_id": "demo"},
                       headers=self.auth("s3cret"))
        done = c.wait_job(job["id"])
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual([s["state"] for s in done["stages"]],
                         ["succeeded", "succeeded"])
        self.assertEqual(done["stages"][1]["tasks"]["total"], 4)
        downloads = os.path.join(c.job_dir(job["id"]), "downloads")
        self.assertEqual(sorted(os.listdir(downloads)),
                         ["file1.txt", "file2.txt", "file3.txt"])
        with open(os.path.join(downloads, "file2.txt")) as f:
            self.assertIn("file2.txt", f.read())
        # The header input is a secret: masked everywhere in the API.
        for path in ("/api/v1/jobs/" + job["id"],
                     "/api/v1/jobs/%s/tasks" % job["id"], "/api/v1/jobs"):
            self.assertNotIn("s3cret", c.get(path).body)
            self.assertNotIn(self.auth("s3cret")["Authorization"][6:],
                             c.get(path).body)

    def test_wrong_credentials_fail_downloads_but_not_the_job(self):
        c = self.cluster
        job = c.submit("request-data", {"data_id": "demo"},
                       headers=self.auth("wrong"))
        done = c.wait_job(job["id"])
        # Stage 2 has job_failed_on_error: false, as in the spec.
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(done["stages"][1]["state"], "failed")
        self.assertEqual(done["stages"][1]["tasks"]["failed"], 3)

    def test_unknown_data_set_fails_the_job_in_stage_one(self):
        c = self.cluster
        job = c.submit("request-data", {"data_id": "no-such-set"},
                       headers=self.auth("s3cret"))
        done = c.wait_job(job["id"])
        self.assertEqual(done["state"], "failed", done)
        self.assertIn("Request Data", done["error"])
        self.assertEqual(done["stages"][1]["state"], "pending")


if __name__ == "__main__":
    unittest.main(verbosity=2)
