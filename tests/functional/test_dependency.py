#!/usr/bin/env python3
"""Dependency experiments (issue 16), end to end: a second repository, `dataload`, that two
workflows of the example repository declare in [[dependencies]] and find on PYTHONPATH. Its
change — a diff, or a commit of it — is the candidate; both arms run the same revision of the
example repository. Real server, worker, PostgreSQL, git and Python.

1. Bad requests say what is wrong and store nothing.
2. A commit of the dependency that slows one module is a regression of the workflow that imports
   it, and of that one only; the suite summary says so, and the alert goes to the commit's author.
3. A diff of the dependency (through the CLI) that takes eager work out of the other module is an
   improvement of that workflow, judged across the suite.
4. Once every workflow has a footprint, a pre-submit diff without named workflows runs those whose
   footprint it touches: a README-only diff runs none and says so, a diff of train.py runs the
   example trainer's workflows and not the dataload ones.
"""
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SOURCE, Lab, free_port  # noqa: E402

RUNS = 12  # a fixed design: one block per arm, one look; the effects below are 100+ ms on 30-60 ms
WEBHOOK_PORT = free_port()
CONFIG = f"""
[repos.dataload]
url = "{{tmp}}/repos/dataload"
default_branch = "main"
[repos.example.alerts]
webhook_url = "http://127.0.0.1:{WEBHOOK_PORT}/hook"
[alerts]
poll_ms = 100
"""


def dl_workflow(name, module):
    # Strict alpha: "not a regression" of the workflow the change does not touch fails only when
    # something is wrong (1 time in 1000 by chance). The dependency sits in vendor/dataload of each
    # run's copy; a relative PYTHONPATH is made absolute by Python at start-up.
    return f"""
name = "{name}"
repo = "example"
description = "Imports dataload.{module} and reports its first batch."
command = ["python3", "-c", "import dataload.{module} as m; m.first_batch(); print('first batch', flush=True)"]
probe = "stdout"
first_batch_regex = "^first batch"
timeout_seconds = 60
warmup_runs = 1

[shrink]
env = {{ PYTHONPATH = "vendor/dataload", PYTHONDONTWRITEBYTECODE = "1" }}

[[dependencies]]
repo = "dataload"
path = "vendor/dataload"

[policy]
alpha = 0.002
detection_floor_pct = 5.0
"""


WORKFLOWS = {"dl-text.toml": dl_workflow("dl-text", "text"), "dl-images.toml": dl_workflow("dl-images", "images")}

TEXT = "def first_batch():\n    return ['a', 'b']\n"
# Eager work at import time: what a lazy-import change takes out.
IMAGES_EAGER = "import time\ntime.sleep(0.12)\n\n\ndef first_batch():\n    return [0, 1]\n"
IMAGES_LAZY = "def first_batch():\n    return [0, 1]\n"


class DependencyExperiments(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lab = lab = Lab(workers=1, extra_config=CONFIG, extra_workflows=WORKFLOWS).__enter__()
        try:
            cls.dep = os.path.join(lab.tmp, "repos", "dataload")
            os.makedirs(os.path.join(cls.dep, "dataload"))
            cls.dgit("init", "-q", "-b", "main")
            for path, text in (("dataload/__init__.py", ""), ("dataload/text.py", TEXT), ("dataload/images.py", IMAGES_EAGER)):
                with open(os.path.join(cls.dep, path), "w") as f:
                    f.write(text)
            cls.dgit("add", "-A")
            cls.dgit("-c", "user.name=Lib Keeper", "-c", "user.email=keeper@example.com", "commit", "-qm", "dataload 1.0")
            # A commit on a branch that slows the text module down at import.
            cls.dgit("checkout", "-q", "-b", "slow-text")
            with open(os.path.join(cls.dep, "dataload", "text.py"), "w") as f:
                f.write("import time\ntime.sleep(0.15)\n\n\n" + TEXT)
            cls.dgit("-c", "user.name=Dee Pendency", "-c", "user.email=dee@example.com", "commit", "-qam",
                     "Warm the tokenizer cache at import")
            cls.slow_commit = cls.dgit("rev-parse", "HEAD")
            cls.dgit("checkout", "-q", "main")
            lab.start_sink(http_port=WEBHOOK_PORT)
        except BaseException:
            lab.__exit__(*sys.exc_info())
            raise

    @classmethod
    def tearDownClass(cls):
        cls.lab.__exit__(*sys.exc_info())

    @classmethod
    def dgit(cls, *args):
        """git in the dependency's repository."""
        return cls.lab.git(*args, cwd=cls.dep)

    def post(self, body):
        return self.lab.api("POST", "/api/v1/experiments", {"repo": "example", "base": "main", **body},
                            token=self.lab.submit_token)

    def test_1_bad_dependency_requests_say_what_is_wrong(self):
        before = self.lab.count_experiments()
        cases = [
            ({"dependency": "dataload"}, "'dependency' must be an object"),
            ({"dependency": {"diff": "x"}}, "'dependency.repo' is required"),
            ({"dependency": {"repo": "dataload"}}, "needs 'diff'"),
            ({"dependency": {"repo": "dataload", "diff": "d", "candidate": "main"}}, "not both"),
            ({"dependency": {"repo": "dataload", "diff": "  \n"}}, "'dependency.diff' is empty"),
            ({"dependency": {"repo": "dataload", "candidate": "main", "path": "x"}}, "'dependency.path' is not a key"),
            ({"dependency": {"repo": "nope", "candidate": "main"}}, "unknown repository 'nope'"),
            ({"dependency": {"repo": "dataload", "candidate": "no-such-branch"}}, "no-such-branch"),
            ({"dependency": {"repo": "dataload", "candidate": "main"}, "diff": "x"}, "without a top-level 'diff'"),
            ({"dependency": {"repo": "dataload", "candidate": "main"}, "candidate_env": {"A": "1"}}, "one change at a time"),
            ({"dependency": {"repo": "dataload", "candidate": "main"}, "workflows": ["example-train"]},
             "workflow 'example-train' does not declare dependency 'dataload'"),
            ({"dependency": {"repo": "dataload", "diff": "--- a/nothing.py\n+++ b/nothing.py\n@@ -1 +1 @@\n-x\n+y\n"}},
             "does not apply"),
        ]
        for body, words in cases:
            status, out = self.post(body)
            self.assertEqual(status, 400, (body, out))
            self.assertIn(words, out["error"]["message"], body)
        # The example repository itself declares no dependency of that name.
        status, out = self.lab.api("POST", "/api/v1/experiments", {"repo": "dataload", "dependency": {
            "repo": "example", "candidate": "main"}}, token=self.lab.submit_token)
        self.assertEqual(status, 400, out)
        self.assertIn("no workflow of repository 'dataload' declares dependency 'example'", out["error"]["message"])
        self.assertEqual(self.lab.count_experiments(), before, "a refused request stores nothing")
        # The workflows say what they depend on.
        _, wf = self.lab.api("GET", "/api/v1/workflows/dl-text")
        self.assertEqual(wf["dependencies"], [{"repo": "dataload", "path": "vendor/dataload", "ref": ""}])

    def test_2_a_dependency_commit_that_slows_one_module_regresses_that_workflow_only(self):
        status, out = self.post({"dependency": {"repo": "dataload", "candidate": "slow-text"}, "runs_per_arm": RUNS})
        self.assertEqual(status, 201, out)
        e = self.lab.wait_experiment(out["id"], timeout=400)
        self.assertEqual(e["status"], "done", e)
        verdicts = {w["workflow"]: w["verdict"] for w in e["workflows"]}
        self.assertEqual(set(verdicts), {"dl-text", "dl-images"}, "every workflow that uses the dependency, no other")
        self.assertEqual(verdicts["dl-text"], "regression", json.dumps(e["workflows"])[:2000])
        self.assertNotEqual(verdicts["dl-images"], "regression", json.dumps(e["workflows"])[:2000])
        # Both arms ran the same revision of the example repository; only the dependency differed.
        self.assertEqual(e["base"]["commit"], e["candidate"]["commit"])
        dep = e["candidate"]["dependency"]
        self.assertEqual((dep["repo"], dep["ref"], dep["commit"]), ("dataload", "slow-text", self.slow_commit))
        self.assertEqual(e["author"], "Dee Pendency <dee@example.com>", "the commit's author, as nobody else was named")
        # The suite: one regressed, with the multiplicity accounted for.
        suite = e["suite"]
        self.assertEqual(suite["workflows"], 2, suite)
        self.assertEqual(suite["counts"]["regression"], 1, suite)
        self.assertEqual(suite["regressed"], ["dl-text"], "slower after Holm's correction over the two")
        # Each workflow's baseline was the dependency's default branch, frozen at submission.
        main = self.dgit("rev-parse", "main")
        for w in e["workflows"]:
            self.assertEqual(w["dependencies"][0]["commit"], main)
        # What each workflow's start-up opened of its copy (its footprint, from the baseline's first
        # measured run): the dependency's modules it imports, not the other one, not the README.
        _, wf = self.lab.api("GET", "/api/v1/workflows/dl-text")
        fp = wf["footprint"]
        self.assertIsNotNone(fp, wf)
        self.assertEqual(fp["base_commit"], e["base"]["commit"])
        self.assertIn("vendor/dataload/dataload/text.py", fp["files"])
        self.assertIn("vendor/dataload/dataload/__init__.py", fp["files"])
        self.assertNotIn("vendor/dataload/dataload/images.py", fp["files"])
        self.assertNotIn("README.md", fp["files"])
        self.assertEqual(fp["file_count"], len(fp["files"]))
        _, wf = self.lab.api("GET", "/api/v1/workflows/dl-images")
        self.assertIn("vendor/dataload/dataload/images.py", wf["footprint"]["files"])
        self.assertNotIn("vendor/dataload/dataload/text.py", wf["footprint"]["files"])
        # The change's author hears of it, with what the candidate ran.
        def alert():
            return [r["body"] for r in self.lab.received()
                    if r.get("channel") == "webhook" and r["body"].get("kind") == "presubmit_regression"]
        a = self.lab.wait_until(alert, 60, "the regression's alert")[0]
        self.assertEqual(a["recipient"]["email"], "dee@example.com")
        self.assertIn("dependency dataload at slow-text", a["text"])
        self.assertIn("dl-text", a["text"])

    def test_3_a_dependency_diff_that_makes_a_module_lazy_improves_that_workflow(self):
        main = self.dgit("rev-parse", "main")
        with open(os.path.join(self.dep, "dataload", "images.py"), "w") as f:
            f.write(IMAGES_LAZY)
        diff = self.dgit("diff")
        self.dgit("checkout", "--", ".")
        with tempfile.NamedTemporaryFile("w", suffix=".diff", delete=False) as f:
            f.write(diff + "\n")
        r = self.lab.cli("submit", "--repo", "example", "--dependency", "dataload", "--dependency-diff", f.name,
                         "--runs", str(RUNS), "--author", "Lazy Lou <lou@example.com>", "--wait", "--json")
        os.unlink(f.name)
        # 0 (no regression) or 3 (inconclusive: dl-text's "the same within 2%" may want more than 12 runs).
        self.assertIn(r.returncode, (0, 3), f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        e = json.loads(r.stdout)
        verdicts = {w["workflow"]: w["verdict"] for w in e["workflows"]}
        self.assertEqual(verdicts["dl-images"], "improvement", json.dumps(e["workflows"])[:2000])
        self.assertNotEqual(verdicts["dl-text"], "regression")
        self.assertEqual(e["suite"]["improved"], ["dl-images"], e["suite"])
        dep = e["candidate"]["dependency"]
        self.assertEqual(dep["repo"], "dataload")
        self.assertNotIn("diff", dep, "the diff itself is at /diff, not in every experiment read")
        self.assertTrue(dep["diff_sha256"])
        status, text = self.lab.api("GET", f"/api/v1/experiments/{e['id']}/diff")
        self.assertEqual(status, 200)
        self.assertIn("time.sleep(0.12)", text)
        for w in e["workflows"]:
            self.assertEqual(w["dependencies"][0]["commit"], main)
        # The CLI's flags are checked before anything is sent.
        r = self.lab.cli("submit", "--repo", "example", "--dependency", "dataload")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--dependency-diff FILE and --dependency-candidate REV", r.stderr)

    def test_4_a_diff_runs_only_the_workflows_whose_footprint_it_touches(self):
        lab = self.lab
        # The example trainer's two workflows have not run in this lab: a short fixed run records
        # their footprints (the dataload ones have theirs from the experiments above).
        exp = lab.submit("neutral.diff", workflows=("example-train", "example-train-stdout"), runs=3)
        lab.wait_experiment(exp, timeout=300)
        for w in ("example-train", "example-train-stdout", "dl-text", "dl-images"):
            _, wf = lab.api("GET", f"/api/v1/workflows/{w}")
            self.assertIsNotNone(wf["footprint"], f"{w} has no footprint yet")
        _, wf = lab.api("GET", "/api/v1/workflows/example-train")
        self.assertIn("train.py", wf["footprint"]["files"])
        self.assertNotIn("README.md", wf["footprint"]["files"])

        wt = os.path.join(lab.tmp, "readme-wt")
        lab.git("worktree", "add", "-q", "--detach", wt, "main")
        with open(os.path.join(wt, "README.md"), "a") as f:
            f.write("\nMore words.\n")
        readme = lab.git("diff", cwd=wt) + "\n"
        before = lab.count_experiments()
        status, out = self.post({"diff": readme})
        self.assertEqual(status, 200, out)
        self.assertEqual(out["status"], "skipped", out)
        self.assertIsNone(out["id"])
        self.assertIn("nothing to measure", out["message"])
        self.assertEqual(sorted(s["workflow"] for s in out["selection"] if not s["chosen"]),
                         ["dl-images", "dl-text", "example-train", "example-train-stdout"])
        self.assertEqual(lab.count_experiments(), before, "nothing stored")
        # The CLI says so and exits 0; "select": "all" runs them anyway.
        with tempfile.NamedTemporaryFile("w", suffix=".diff", delete=False) as f:
            f.write(readme)
        r = lab.cli("submit", "--repo", "example", "--diff", f.name)
        os.unlink(f.name)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("nothing to measure", r.stderr)
        status, out = self.post({"diff": readme, "select": "all", "runs_per_arm": 3})
        self.assertEqual(status, 201, out)
        lab.api("POST", f"/api/v1/experiments/{out['id']}/cancel", {}, token=lab.submit_token)
        status, out = self.post({"diff": readme, "select": "some"})
        self.assertEqual(status, 400, out)

        # A diff of train.py: the trainer's workflows, which open it; the dataload ones do not.
        with open(os.path.join(SOURCE, "examples", "diffs", "neutral.diff")) as f:
            neutral = f.read()
        status, out = self.post({"diff": neutral, "runs_per_arm": 3})
        self.assertEqual(status, 201, out)
        _, e = lab.api("GET", f"/api/v1/experiments/{out['id']}")
        lab.api("POST", f"/api/v1/experiments/{out['id']}/cancel", {}, token=lab.submit_token)
        self.assertEqual(sorted(w["workflow"] for w in e["workflows"]), ["example-train", "example-train-stdout"])
        chosen = {s["workflow"]: s for s in e["selection"]}
        self.assertTrue(chosen["example-train"]["chosen"])
        self.assertTrue(chosen["example-train"]["touched"])
        self.assertFalse(chosen["dl-text"]["chosen"])
        self.assertIn("not touched", chosen["dl-text"]["reason"])
        r = lab.cli("status", str(out["id"]))
        self.assertIn("2 of 4 chosen by the files they open", r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
