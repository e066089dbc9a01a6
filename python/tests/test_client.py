"""The Python client against a real grid. Run by e2e/python-client.test.ts, which starts the grid and sets
DSG_COORDINATOR, DSG_TOKEN, DSG_TLS_FINGERPRINT and DSG_TEST_DIR; `python3 -m unittest discover -s python/tests`."""
import json
import os
import tempfile
import unittest
from pathlib import Path

import dsg_client
from dsg_client import Client, Conflict, JobFailed, NotFound, PinMismatch, Unauthorized, ValidationError


class ClientAgainstAGrid(unittest.TestCase):
    def setUp(self):
        self.grid = Client()
        self.work = Path(os.environ.get("DSG_TEST_DIR") or tempfile.mkdtemp())

    def test_health_and_installed_package(self):
        self.assertEqual(self.grid.health()["status"], "ok")
        self.assertEqual(dsg_client.__version__, "0.1.0")
        where = os.environ.get("DSG_EXPECT_PACKAGE_IN")
        if where:
            self.assertTrue(str(Path(dsg_client.__file__).resolve()).startswith(str(Path(where).resolve())), dsg_client.__file__)

    def test_submit_with_inputs_wait_logs_outputs(self):
        src = self.work / "py-inputs"
        (src / "data").mkdir(parents=True, exist_ok=True)
        (src / "square.py").write_text("import os\nv = int(os.environ['DSG_ARRAY_VALUE'])\nprint('task', v)\nopen('out.txt', 'w').write(str(v * v + int(open('data/k.txt').read())))\n")
        (src / "data" / "k.txt").write_text("1000")
        job = self.grid.submit({"name": "py-squares", "command": ["python3", "square.py"], "array": [2, 3, 4],
                                "inputs": ["square.py", "data"], "outputs": ["out.txt"], "resources": {"memory": "64Mi"}}, base_dir=src)
        self.assertTrue(job["id"].startswith("job_"))
        seen = []
        done = self.grid.wait(job["id"], timeout=120, poll=0.2, on_progress=lambda j: seen.append(j["state"]))
        self.assertEqual(done["state"], "succeeded")
        self.assertTrue(seen)
        self.assertEqual(self.grid.logs(job["id"], task=1), "task 3\n")
        files = self.grid.download_outputs(job["id"], self.work / "py-out")
        got = sorted((f.parent.name, f.read_text()) for f in files)
        self.assertEqual(got, [("0", "1004"), ("1", "1009"), ("2", "1016")])
        self.assertEqual([t["state"] for t in self.grid.tasks(job["id"])], ["succeeded"] * 3)

    def test_workflow_and_failures(self):
        wf = self.grid.submit({"name": "py-wf", "stages": {
            "make": {"script": "echo 21 > n.txt", "outputs": ["n.txt"], "resources": {"memory": "32Mi"}},
            "double": {"needs": ["make"], "inputs": [{"from": "make"}], "script": "echo $(( $(cat n.txt) * 2 ))", "resources": {"memory": "32Mi"}},
        }})
        self.assertTrue(wf["id"].startswith("wf_"))
        self.assertEqual(self.grid.wait(wf["id"], timeout=120, poll=0.2)["state"], "succeeded")
        failing = self.grid.submit({"name": "py-fail", "script": "echo oops >&2; exit 3", "resources": {"memory": "32Mi"}})
        with self.assertRaises(JobFailed) as ctx:
            self.grid.wait(failing["id"], timeout=120, poll=0.2)
        self.assertEqual(ctx.exception.job["state"], "failed")
        self.assertIn("oops", self.grid.logs(failing["id"]))

    def test_typed_errors(self):
        with self.assertRaises(ValidationError) as ctx:
            self.grid.submit({"name": "bad", "script": "true", "resources": {"memory": "lots"}})
        self.assertTrue(any(i["path"] == "resources.memory" for i in ctx.exception.issues), ctx.exception.issues)
        with self.assertRaises(NotFound):
            self.grid.job("job_00000000000000000000000000")
        long = self.grid.submit({"name": "py-cancel", "script": "sleep 60", "resources": {"memory": "32Mi"}})
        self.assertIn(self.grid.cancel(long["id"])["state"], ("cancelled", "running", "queued"))
        self.grid.wait(long["id"], timeout=60, poll=0.2, raise_on_failure=False)
        with self.assertRaises(Conflict):
            self.grid.cancel(long["id"])
        with self.assertRaises(Unauthorized):
            Client(token="dsg_admin_wrong").health()
        if self.grid.base_url.startswith("https://"):
            with self.assertRaises(PinMismatch) as pin:
                Client(tls_fingerprint="sha256:" + "ab" * 32).health()
            self.assertIn("Nothing was sent", pin.exception.message)
        with self.assertRaises(ValidationError):
            Client(tls_fingerprint="sha256:xyz")


if __name__ == "__main__":
    unittest.main()
