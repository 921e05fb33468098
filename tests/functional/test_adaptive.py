"""Functional tests of the adaptive engine end to end: the real server, two real workers, a real
PostgreSQL and the example workload. A slowdown is decided in blocks, rerun on the other worker
and confirmed; a slowdown that vanishes in the rerun is reported as not reproduced; an A/A
calibration sets the threshold that later submissions use."""
import os
import pwd
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Lab, SOURCE  # noqa: E402


def slow_for_uid_diff(repo, uid):
    """A diff that makes train.py 250 ms slower when its workload runs as user `uid`, and not
    otherwise. Real processes, real time. (Runs cannot leave state for one another: each runs in
    its own sandbox, with a private /tmp and its job's own copy of the worktree.)"""
    with open(os.path.join(repo, "train.py")) as f:
        head = f.read().splitlines()[:3]
    added = [
        "import os as _os, time as _time",
        f"if _os.getuid() == {uid}: _time.sleep(0.25)",
    ]
    diff = "diff --git a/train.py b/train.py\n--- a/train.py\n+++ b/train.py\n"
    diff += f"@@ -1,3 +1,{3 + len(added)} @@\n"
    diff += "".join("+" + line + "\n" for line in added)
    diff += "".join(" " + line + "\n" for line in head)
    return diff


class AdaptiveVerdicts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lab = Lab(workers=2).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.lab.__exit__(*sys.exc_info())

    def test_a_slowdown_is_confirmed_on_the_other_worker(self):
        exp = self.lab.submit("eager-import.diff")
        e = self.lab.wait_experiment(exp, timeout=400)
        self.assertEqual(e["status"], "done", e)
        self.assertEqual(e["verdict"], "regression", e)
        w = e["workflows"][0]
        res = w["result"]
        self.assertEqual(w["state"], "done")
        self.assertTrue(res["confirmed"], res)
        conf = res["confirmation"]
        self.assertEqual(conf["status"], "reproduced")
        self.assertGreater(conf["effect_pct"], 10)
        if len(res["workers"]) == 1:
            # Another live worker exists: the rerun must run there. (When the blocks already used
            # both workers there is no other one, and the rerun says it shared a worker.)
            self.assertFalse(conf["same_workers"], f"the rerun must avoid {res['workers']}: {conf}")
            self.assertNotIn(res["workers"][0], conf["workers"])
        else:
            self.assertTrue(conf["same_workers"])
        self.assertEqual(w["design"]["runs_per_block"], 10)
        self.assertEqual(res["look"]["outcome"], "different")
        self.assertGreaterEqual(res["look"]["look"], 1)
        self.assertIn("imports", res["phase_summary"], "the eager import slows the imports phase")
        imports = next(p for p in res["phases"] if p["name"] == "imports")
        self.assertTrue(imports["significant"])
        self.assertGreater(imports["share_of_effect"], 0.5)
        # The CLI says confirmed, and exits 1.
        r = self.lab.cli("status", str(exp))
        self.assertIn("regression (confirmed)", r.stdout)
        self.assertIn("confirmation rerun reproduced it", r.stdout)
        self.assertIn("phases: imports", r.stdout)

    @unittest.skipUnless(os.geteuid() == 0, "needs root: the two workers run their workloads as two users")
    def test_a_slowdown_that_does_not_reproduce_alerts_nobody(self):
        # Slow only as nobody: the first block runs on w1 (workloads as nobody), the rerun on w2,
        # restarted with its workloads as daemon, where the diff is not slow.
        lab = self.lab
        lab.kill_worker("w2", signal.SIGTERM)
        diff = slow_for_uid_diff(lab.repo, pwd.getpwnam("nobody").pw_uid)
        status, out = lab.api("POST", "/api/v1/experiments", {"repo": "example", "base": "main", "diff": diff,
                                                              "workflows": ["example-train"]}, token=lab.submit_token)
        self.assertEqual(status, 201, out)
        exp = out["id"]
        lab.wait_until(lambda: lab.api("GET", f"/api/v1/experiments/{exp}")[1]["status"] == "running", 120,
                       "w1 to claim the first block")
        lab.start_worker("w2", run_as="daemon")  # seen as live at once: the rerun waits for it
        r = lab.cli("wait", str(exp))
        self.assertEqual(r.returncode, 3, f"inconclusive\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        self.assertIn("did NOT reproduce", r.stdout)
        _, e = lab.api("GET", f"/api/v1/experiments/{exp}")
        res = e["workflows"][0]["result"]
        self.assertEqual(e["verdict"], "inconclusive")
        self.assertFalse(res["confirmed"])
        self.assertEqual(res["confirmation"]["status"], "not_reproduced")
        self.assertIn("not reproduced", res["reason"])
        self.assertEqual(res["workers"], ["w1"], "the decision was measured on w1")
        self.assertEqual(res["confirmation"]["workers"], ["w2"], "and the rerun on the other worker")

    def test_calibration_sets_the_threshold_later_submissions_use(self):
        # Errors first: unknown workflow, bad sizes, no token.
        status, out = self.lab.api("POST", "/api/v1/workflows/nope/calibrate", {}, token=self.lab.submit_token)
        self.assertEqual(status, 404, out)
        status, out = self.lab.api("POST", "/api/v1/workflows/example-train/calibrate", {"runs_per_arm": 1},
                                   token=self.lab.submit_token)
        self.assertEqual(status, 400, out)
        self.assertIn("runs_per_arm", out["error"]["message"])
        status, out = self.lab.api("POST", "/api/v1/workflows/example-train/calibrate", {})
        self.assertEqual(status, 401, out)
        status, before = self.lab.api("GET", "/api/v1/workflows/example-train")
        self.assertEqual(status, 200)
        self.assertIsNone(before["k"])
        self.assertTrue(before["calibration"]["stale"], "never calibrated")

        r = self.lab.cli("calibrate", "example-train", "--runs", "10", "--batches", "2", "--no-wait", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        status, out = self.lab.api("POST", "/api/v1/workflows/example-train/calibrate", {}, token=self.lab.submit_token)
        self.assertEqual(status, 409, "one calibration at a time")
        self.assertIn("already being calibrated", out["error"]["message"])
        started = __import__("json").loads(r.stdout)
        self.lab.wait_experiment(started["experiment_id"], timeout=400)

        status, w = self.lab.api("GET", "/api/v1/workflows/example-train")
        self.assertEqual(status, 200)
        self.assertGreater(w["sigma_aa_pct"], 0)
        self.assertIsNotNone(w["k"])
        self.assertGreaterEqual(w["threshold_pct"], w["policy"]["detection_floor_pct"])
        self.assertLessEqual(w["achieved_fpr"], w["target_fpr"] if w["budget_met"] else 1.0)
        self.assertEqual([p["effect_pct"] for p in w["power"]], [1, 2, 5, 10])
        self.assertEqual(len(w["roc"]), 41)
        self.assertEqual(w["calibration"]["current"]["id"], started["calibration_id"])
        self.assertFalse(w["calibration"]["stale"])

        # The CLI shows it; a new submission freezes it into its design.
        r = self.lab.cli("workflows", "example-train")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("false positives", r.stdout)
        self.assertIn("ROC", r.stdout)
        exp = self.lab.submit("neutral.diff")
        _, e = self.lab.api("GET", f"/api/v1/experiments/{exp}")
        design = e["workflows"][0]["design"]
        self.assertEqual(design["calibration"]["id"], started["calibration_id"])
        self.assertAlmostEqual(design["threshold_pct"], w["threshold_pct"])
        self.lab.api("POST", f"/api/v1/experiments/{exp}/cancel", token=self.lab.submit_token)


if __name__ == "__main__":
    unittest.main(verbosity=2)
