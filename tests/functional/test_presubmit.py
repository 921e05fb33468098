"""Functional tests of the pre-submit path: the real server, two real workers, a real
PostgreSQL, real git and the example training workload at two real revisions."""
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SHORT_TIMEOUT, Lab, SOURCE, example_workflow_variant, pg_ctl  # noqa: E402

# Measured runs per arm. 8 were enough for the eager import's +40% at the 4% noise of a quiet
# VM; on a busy one runs vary by 20% (CV) and 8 left the Welch interval across zero while the
# rank test said p = 0.0002. 20 decide it at that noise too.
RUNS = 20

# The neutral diff's checks use a fixed design (one look, no confirmation rerun), whose chance of
# calling a change that is not there is its alpha: with example-train's 0.1 a neutral diff would
# be judged a regression in about 1 run of these tests in 20 by design. This copy of the workflow
# tests at alpha 0.002 (a false regression at most 1 time in 1000), so "a neutral diff is not a
# regression" is a check that fails only when something is wrong. The regressions keep the
# workflow as configured.
STRICT = "example-train-strict"
STRICT_WORKFLOW = {f"{STRICT}.toml": example_workflow_variant(STRICT, alpha=0.002)}


class PresubmitVerdicts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lab = Lab(workers=2, extra_workflows=STRICT_WORKFLOW).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.lab.__exit__(*sys.exc_info())

    def test_regressing_diff_is_judged_regression_through_the_cli(self):
        r = self.lab.cli("submit", "--repo", "example", "--base", "main", "--diff",
                         os.path.join(SOURCE, "examples", "diffs", "eager-import.diff"),
                         "--workflow", "example-train", "--runs", str(RUNS), "--wait")
        self.assertEqual(r.returncode, 1, f"exit code 1 means regression\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        self.assertIn("regression", r.stdout)
        self.assertIn("example-train", r.stdout)
        self.assertRegex(r.stdout, r"\+\d+\.\d%")  # the effect, as a percentage

    def test_regression_result_has_effect_ci_p_and_phases(self):
        exp = self.lab.submit("eager-import.diff", runs=RUNS)
        e = self.lab.wait_experiment(exp)
        self.assertEqual(e["status"], "done", e)
        self.assertEqual(e["verdict"], "regression", e)
        res = e["workflows"][0]["result"]
        self.assertLessEqual(res["n_baseline"], RUNS)
        self.assertGreaterEqual(res["n_baseline"], RUNS - RUNS // 5)  # the outlier rule drops at most 20% of an arm
        self.assertGreaterEqual(res["n_candidate"], RUNS - RUNS // 5)
        self.assertGreater(res["effect_pct"], 10)
        self.assertGreater(res["ci_low_pct"], 0)
        self.assertLess(res["p_value"], 0.01)
        self.assertGreater(res["median_candidate_ms"], res["median_baseline_ms"])
        self.assertLess(res["rank_test"]["p_value"], 0.01, "the rank test agrees")
        self.assertGreater(res["rank_test"]["hl_shift_pct"], 10)
        self.assertFalse(res["equivalence"]["equivalent"])
        self.assertEqual(res["outliers_baseline"] + res["n_baseline"], RUNS)
        phases = {p["name"]: p for p in res["phases"]}
        self.assertIn("imports", phases, res["phases"])
        moved = max(res["phases"], key=lambda p: p["delta_ms"] or 0)
        self.assertEqual(moved["name"], "imports", "the eager import slows the imports phase most")
        # Samples: every run of the schedule once, with the worker and host facts.
        status, s = self.lab.api("GET", f"/api/v1/experiments/{exp}/samples")
        self.assertEqual(status, 200)
        measured = [x for x in s["samples"] if not x["warmup"]]
        self.assertEqual(len(measured), 2 * RUNS)
        self.assertTrue(all(x["worker"] in ("w1", "w2") for x in s["samples"]))
        self.assertTrue(all(x["host"].get("kernel") for x in s["samples"]), s["samples"][0])
        self.assertTrue(all(x["cpu_ms"] is not None and x["max_rss_kb"] for x in measured))
        # The lab's workers run each workload in a cgroup that counts CPU time: every measured run
        # has its CPU time to the first batch, so the verdict tested it too, at its share of alpha.
        self.assertTrue(all(x["cpu_to_first_batch_ms"] and x["cpu_to_first_batch_ms"] > 0 for x in measured),
                        measured[0])
        self.assertTrue(all(x["steal_ms"] is not None and x["steal_ms"] >= 0 for x in measured), measured[0])
        self.assertTrue(res["cpu_time"]["tested"], res["cpu_time"])
        self.assertAlmostEqual(res["cpu_time"]["alpha"] + res["ttfb_alpha"] + res["tail_alpha_share"] * res["alpha"],
                               res["alpha"])
        self.assertIn("slow_candidate", res["tail"], res["tail"])
        self.assertIn(res["decided_by"], ("ttfb", "cpu_time"))

    def test_neutral_diff_is_not_a_regression(self):
        r = self.lab.cli("submit", "--repo", "example", "--diff",
                         os.path.join(SOURCE, "examples", "diffs", "neutral.diff"),
                         "--workflow", STRICT, "--runs", str(RUNS), "--wait", "--json")
        self.assertIn(r.returncode, (0, 3), f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        self.assertNotIn('"verdict":"regression"', r.stdout)

    def test_diff_that_does_not_apply_gives_gits_message(self):
        with open(os.path.join(SOURCE, "examples", "diffs", "does-not-apply.diff")) as f:
            diff = f.read()
        status, body = self.lab.api("POST", "/api/v1/experiments",
                                    {"repo": "example", "base": "main", "diff": diff}, token=self.lab.submit_token)
        self.assertEqual(status, 400, body)
        self.assertEqual(body["error"]["code"], "invalid_argument")
        self.assertIn("does not apply", body["error"]["message"])
        self.assertRegex(body["error"]["message"], r"patch (failed|does not apply)|error:")
        # Nothing was half-written.
        status, lst = self.lab.api("GET", "/api/v1/experiments?limit=1000")
        self.assertFalse(any(x["candidate"]["diff_sha256"] and x["status"] == "queued" and
                             x["title"] == "never" for x in lst["experiments"]))
        r = self.lab.cli("submit", "--repo", "example", "--diff",
                         os.path.join(SOURCE, "examples", "diffs", "does-not-apply.diff"), "--wait")
        self.assertEqual(r.returncode, 2)
        self.assertIn("does not apply", r.stderr)

    def test_bad_requests_say_what_is_wrong(self):
        lab = self.lab
        cases = [
            (b"{not json", 400, "not valid JSON"),
            (b"[1,2]", 400, "must be a JSON object"),
            (b'{"repo": "nope", "diff": "x"}', 400, "unknown repository 'nope'"),
            (b'{"repo": "example", "diff": "x", "workflows": ["nope"]}', 400, "unknown workflow 'nope'"),
            (b'{"repo": "example", "base": "no-such-branch", "candidate": "main"}', 400, "no-such-branch"),
            (b'{"repo": "example"}', 400, "give 'diff'"),
        ]
        for raw, code, text in cases:
            status, body = lab.api("POST", "/api/v1/experiments", raw=raw, token=lab.submit_token)
            self.assertEqual(status, code, (raw, body))
            self.assertIn(text, body["error"]["message"], raw)
        status, body = lab.api("POST", "/api/v1/experiments", {"repo": "example", "diff": "x"})
        self.assertEqual(status, 401)
        self.assertIn("missing bearer token", body["error"]["message"])
        status, body = lab.api("POST", "/api/v1/experiments", {"repo": "example", "diff": "x"}, token="ttfb_bogus")
        self.assertEqual(status, 401)
        status, body = lab.api("POST", "/api/v1/experiments", {"repo": "example", "diff": "x"}, token=lab.worker_token)
        self.assertEqual(status, 403)
        self.assertIn("submit", body["error"]["message"])
        status, body = lab.api("POST", "/api/v1/worker/claim", {"worker": {"name": "x"}}, token=lab.submit_token)
        self.assertEqual(status, 403)
        status, body = lab.api("POST", "/api/v1/experiments", raw=b"x" * (2 * 1024 * 1024), token=lab.submit_token)
        self.assertEqual(status, 413)
        self.assertEqual(body["error"]["code"], "payload_too_large")
        status, body = lab.api("GET", "/api/v1/experiments/999999")
        self.assertEqual(status, 404)
        status, body = lab.api("GET", "/api/v1/nothing-here")
        self.assertEqual(status, 404)
        # The server is still fine.
        self.assertEqual(lab.api("GET", "/healthz")[0], 200)

    def test_repos_workflows_health_and_metrics(self):
        status, body = self.lab.api("GET", "/api/v1/repos")
        self.assertEqual(status, 200)
        self.assertEqual(body["repos"][0]["name"], "example")
        self.assertEqual(body["repos"][0]["default_branch"], "main")
        status, body = self.lab.api("GET", "/api/v1/workflows")
        names = [w["name"] for w in body["workflows"]]
        self.assertIn("example-train", names)
        wf = next(w for w in body["workflows"] if w["name"] == "example-train")
        self.assertEqual(wf["repo"], "example")
        self.assertTrue(wf["command"])
        self.assertIn("alpha", wf["policy"])
        status, body = self.lab.api("GET", "/readyz")
        self.assertEqual(status, 200)
        status, text = self.lab.api("GET", "/metrics")
        self.assertEqual(status, 200)
        for name in ("ttfb_http_requests_total", "ttfb_http_request_duration_seconds_bucket", "ttfb_jobs{",
                     "ttfb_workers_live", "ttfb_experiments{"):
            self.assertIn(name, text)
        status, body = self.lab.api("GET", "/api/v1/workers")
        self.assertEqual(status, 200)
        self.assertTrue({"w1", "w2"} <= {w["name"] for w in body["workers"]}, body)


class WorkerFailures(unittest.TestCase):
    def test_worker_killed_mid_job_is_requeued_without_duplicate_samples(self):
        with Lab(workers=1, lease_seconds=4, extra_workflows=STRICT_WORKFLOW) as lab:
            exp = lab.submit("neutral.diff", runs=10, workflows=[STRICT])
            # Wait until the worker has reported a few samples, then kill it hard.
            lab.wait_until(lambda: len(lab.api("GET", f"/api/v1/experiments/{exp}/samples")[1]["samples"]) >= 3, 120,
                           "the first samples")
            lab.kill_worker("w1", signal.SIGKILL)
            lab.start_worker("w2")
            e = lab.wait_experiment(exp, timeout=300)
            self.assertEqual(e["status"], "done", e)
            self.assertIn(e["verdict"], ("no_change", "inconclusive", "improvement"), e)
            _, s = lab.api("GET", f"/api/v1/experiments/{exp}/samples")
            runs = [x["run_index"] for x in s["samples"]]
            self.assertEqual(len(runs), len(set(runs)), "duplicate samples")
            self.assertEqual(len([x for x in s["samples"] if not x["warmup"]]), 20)
            self.assertEqual({x["worker"] for x in s["samples"]}, {"w2"}, "the dead worker's partial run is discarded")
            self.assertTrue(all(x["attempt"] == 2 for x in s["samples"]))

    def test_hanging_workload_is_killed_at_its_timeout_and_the_worker_carries_on(self):
        with Lab(workers=1, extra_workflows=SHORT_TIMEOUT) as lab:
            # Build a diff against the real first lines of train.py so it applies.
            with open(os.path.join(lab.repo, "train.py")) as f:
                head = f.read().splitlines()[:3]
            diff = "diff --git a/train.py b/train.py\n--- a/train.py\n+++ b/train.py\n@@ -1,3 +1,5 @@\n"
            diff += "+import time\n+time.sleep(600)\n" + "".join(" " + line + "\n" for line in head)
            t0 = time.time()
            exp = lab.submit(diff=diff, workflows=["example-train-short-timeout"])
            e = lab.wait_experiment(exp, timeout=120)
            self.assertEqual(e["status"], "error", e)
            self.assertEqual(e["verdict"], "error")
            self.assertEqual(e["error"]["code"], "workload_timeout", e["error"])
            self.assertLess(time.time() - t0, 60, "the hang must be cut at the 3 s timeout")
            # The same worker takes the next job.
            exp2 = lab.submit("neutral.diff", runs=4)
            e2 = lab.wait_experiment(exp2, timeout=180)
            self.assertEqual(e2["status"], "done", e2)
            self.assertIn("w1", lab.workers)
            self.assertIsNone(lab.workers["w1"].poll(), "the worker must still be running")


class DatabaseRestart(unittest.TestCase):
    def test_server_answers_503_while_the_database_is_away_and_work_goes_on(self):
        with Lab(workers=1) as lab:
            exp = lab.submit("neutral.diff", runs=10)
            lab.wait_until(lambda: len(lab.api("GET", f"/api/v1/experiments/{exp}/samples")[1]["samples"]) >= 2, 120,
                           "the first samples")
            pg_ctl("-m", "fast", "-w", "stop")
            try:
                status, body = lab.api("GET", f"/api/v1/experiments/{exp}")
                self.assertEqual(status, 503, body)
                self.assertEqual(body["error"]["code"], "unavailable")
                self.assertIn("database", body["error"]["message"])
                self.assertEqual(lab.api("GET", "/readyz")[0], 503)
                self.assertEqual(lab.api("GET", "/healthz")[0], 200, "the process itself is alive")
                time.sleep(2)  # the worker's reports fail meanwhile and are retried
            finally:
                pg_ctl("-w", "-l", os.path.join(os.environ["TTFB_LAB_TEST_PG_DATA"], "..", "postgres.log"), "start")
            e = lab.wait_experiment(exp, timeout=300)
            self.assertEqual(e["status"], "done", e)
            _, s = lab.api("GET", f"/api/v1/experiments/{exp}/samples")
            runs = [x["run_index"] for x in s["samples"]]
            self.assertEqual(len(runs), len(set(runs)), "duplicate samples")
            self.assertEqual(len([x for x in s["samples"] if not x["warmup"]]), 20, "no sample was lost")
            self.assertEqual(lab.api("GET", "/readyz")[0], 200)


if __name__ == "__main__":
    unittest.main(verbosity=2)
