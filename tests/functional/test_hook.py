#!/usr/bin/env python3
"""`ttfb-lab presubmit` and the pre-push hook (issue 6), end to end: a clone of the example
repository with a local bare remote, the real server and a worker.

1. presubmit in a checkout: the working tree's eager import is a regression (exit 1, --json with
   the verdict and the dashboard link, a Markdown summary and a JUnit report written); --no-wait
   prints the experiment's address; a clean tree has nothing to measure (exit 0); outside a
   checkout or with an unknown repository it says what is wrong (exit 2).
2. `hook install` writes .git/hooks/pre-push: a push of a commit that adds an eager heavy import
   is refused and shows the verdict, the remote is unchanged; a neutral commit goes through;
   TTFB_LAB_SKIP=1 skips the measurement on purpose.
3. With the server unreachable the hook says so and follows the policy: fail-open pushes,
   fail-closed refuses.
4. The plain CI step (configs/ci/presubmit.sh) on a branch with the eager import: exit 1, the
   Markdown summary and the JUnit report written; with the server away: exit 2.
5. The GitHub Actions and GitLab CI examples (configs/ci/*.yml), run as their runners would run
   them: the YAML is read, its expressions and variables filled in, its shell steps run in a
   fresh clone of the branch with the CLI on PATH. The check fails on the regression, the verdict
   table lands in $GITHUB_STEP_SUMMARY / the Markdown artifact, and the JUnit report is where the
   upload step and the merge request's test report look for it.
"""
import re
import shutil
import tempfile
import json
import os
import subprocess
import sys
import tomllib
import unittest
import xml.etree.ElementTree as ET

import yaml  # python3-yaml (./lab test installs it)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import CLI_BIN, SOURCE, Lab, example_workflow_variant, free_port  # noqa: E402

with open(os.path.join(SOURCE, "examples", "example-repo.toml"), "rb") as f:
    FACTS = tomllib.load(f)
EAGER_DIFF = os.path.join(SOURCE, "examples", "diffs", "eager-import.diff")
NEUTRAL_DIFF = os.path.join(SOURCE, "examples", "diffs", "neutral.diff")
# A budget of 40 runs per arm instead of 60, in blocks of 10 as configured. The eager import's
# +20..35% is decided at the first or second look (the worst seen, on a machine running two test
# suites at once: the stdout workflow at 30 runs), and confirmed by a rerun as before; the
# neutral push, which runs to the budget whatever it is, gets through a third sooner (the rerun
# is capped at 40 too, as in every lab: harness.RERUN_CAP). The hook's verdicts, exit codes and
# reports are the same at any budget.
CONFIG = """
[defaults.policy]
max_runs_per_arm = 40
"""
# The stdout workflow only runs in the CI examples (test 5), whose subject is the runners' steps,
# exit codes and reports: its regression is not confirmed by a rerun there (example-train's is,
# in every scenario), which spares two reruns of 80 runs each.
STDOUT_UNCONFIRMED = {"example-train-stdout.toml": example_workflow_variant("example-train-stdout", "example-train-stdout",
                                                                             confirm=False)}


class PresubmitHookTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lab = lab = Lab(workers=1, extra_config=CONFIG, extra_workflows=STDOUT_UNCONFIRMED).__enter__()
        try:
            cls.remote = os.path.join(lab.tmp, "remote.git")
            cls.work = os.path.join(lab.tmp, "work")
            subprocess.run(["git", "clone", "-q", "--bare", lab.repo, cls.remote], check=True)
            subprocess.run(["git", "clone", "-q", cls.remote, cls.work], check=True)
            cls.git("config", "user.name", "Pat Pusher")
            cls.git("config", "user.email", "pat@example.com")
            cls.start = cls.git("rev-parse", "HEAD").stdout.strip()
        except BaseException:
            lab.__exit__(*sys.exc_info())
            raise

    @classmethod
    def tearDownClass(cls):
        cls.lab.__exit__(*sys.exc_info())

    @classmethod
    def git(cls, *args, env=None, check=True):
        p = subprocess.run(["git", *args], cwd=cls.work, capture_output=True, text=True, env=env, timeout=900)
        if check and p.returncode != 0:
            raise AssertionError(f"git {' '.join(args)}: {p.stderr}")
        return p

    def env(self, **extra):
        return {**os.environ, "TTFB_LAB_SERVER": self.lab.url, "TTFB_LAB_TOKEN": self.lab.submit_token, **extra}

    def clean(self):
        self.git("reset", "-q", "--hard", "origin/main")
        self.git("clean", "-fdq")

    def cli(self, *args, cwd=None, **extra):
        return subprocess.run([CLI_BIN, *args], cwd=cwd or self.work, capture_output=True, text=True, env=self.env(**extra),
                              timeout=900)

    def remote_main(self):
        return subprocess.run(["git", "--git-dir", self.remote, "rev-parse", "main"], capture_output=True, text=True,
                              check=True).stdout.strip()

    def experiments(self):
        return self.lab.api("GET", "/api/v1/experiments?limit=1000")[1]["experiments"]

    def test_1_presubmit_in_a_checkout(self):
        self.clean()
        self.git("config", "ttfb-lab.workflow", "example-train")  # one workflow: the test is about the checkout
        self.git("apply", EAGER_DIFF)
        summary = os.path.join(self.lab.tmp, "summary.md")
        junit = os.path.join(self.lab.tmp, "junit.xml")
        p = self.cli("presubmit", "--repo", "example", "--json", "--summary", summary, "--junit", junit)
        self.assertEqual(p.returncode, 1, p.stderr)
        e = json.loads(p.stdout)
        self.assertEqual(e["verdict"], "regression")
        self.assertTrue(e["dashboard_url"].endswith(f"/#/experiments/{e['id']}"))
        self.assertIn("working tree of main", e["title"])
        self.assertEqual(e["author"], "Pat Pusher <pat@example.com>")
        self.assertIn("merge base with origin/main", p.stderr, "says what it measures against")
        with open(summary) as f:
            md = f.read()
        self.assertIn("| example-train | **regression** (confirmed)", md)
        self.assertIn(e["dashboard_url"], md)
        suite = ET.parse(junit).getroot().find("testsuite")
        self.assertEqual(suite.get("failures"), "1")
        self.assertIsNotNone(suite.find("testcase").find("failure"))

        # --no-wait: the address, at once (the experiment is cancelled: it would hold the worker).
        p = self.cli("presubmit", "--repo", "example", "--no-wait")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("submitted experiment", p.stdout)
        exp_id = int(p.stdout.split("submitted experiment ")[1].split(":")[0])
        self.assertIn(f"/#/experiments/{exp_id}", p.stdout)
        self.lab.api("POST", f"/api/v1/experiments/{exp_id}/cancel", {}, token=self.lab.submit_token)

        # A clean tree: nothing to measure, nothing submitted.
        self.git("checkout", "--", ".")
        self.git("clean", "-fdq")
        before = len(self.experiments())
        p = self.cli("presubmit", "--repo", "example")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("nothing to measure", p.stderr)
        self.assertEqual(len(self.experiments()), before)

        # Bad input says what is wrong.
        p = self.cli("presubmit", "--repo", "example", cwd=self.lab.tmp)
        self.assertEqual(p.returncode, 2)
        self.assertIn("not inside a git checkout", p.stderr)
        p = self.cli("presubmit", "--repo", "nope")
        self.assertEqual(p.returncode, 2)
        self.assertIn("no repository 'nope'", p.stderr)
        p = self.cli("presubmit", "--repo", "example", "--unreachable", "maybe")
        self.assertEqual(p.returncode, 2)
        self.assertIn("fail-open or fail-closed", p.stderr)

    def test_2_the_hook_refuses_a_regression_and_lets_a_neutral_commit_through(self):
        self.clean()
        p = self.cli("hook", "install", "--repo", "example", "--workflow", "example-train")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.git("config", "--get-all", "ttfb-lab.workflow").stdout.split(), ["example-train"])
        hook = os.path.join(self.work, ".git", "hooks", "pre-push")
        self.assertTrue(os.access(hook, os.X_OK))
        self.assertEqual(self.git("config", "ttfb-lab.unreachable").stdout.strip(), "fail-open")
        self.assertNotEqual(self.git("config", "ttfb-lab.token", check=False).returncode, 0,
                            "the token in the environment stays out of .git/config")
        self.assertNotIn("plain text", p.stderr)
        # A token given on the command line is saved, and the user is told where.
        other = tempfile.mkdtemp(dir=self.lab.tmp)
        subprocess.run(["git", "init", "-q", other], check=True)
        p = self.cli("hook", "install", "--token", "t0ken", cwd=other)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("saved in plain text as git config ttfb-lab.token", p.stderr)
        self.assertEqual(subprocess.run(["git", "config", "ttfb-lab.token"], cwd=other, capture_output=True,
                                        text=True).stdout.strip(), "t0ken")

        start = self.remote_main()
        self.git("apply", EAGER_DIFF)
        self.git("add", "-A")
        self.git("commit", "-qm", "Track runs with the new tracking module")
        push = self.git("push", "origin", "HEAD:main", env=self.env(), check=False)
        self.assertNotEqual(push.returncode, 0, "the push of a regression is refused")
        self.assertIn("push refused", push.stderr)
        self.assertIn("regression", push.stdout + push.stderr, "the verdict is shown")
        self.assertEqual(self.remote_main(), start, "the remote did not move")

        self.git("reset", "-q", "--hard", "origin/main")
        self.git("apply", NEUTRAL_DIFF)
        self.git("commit", "-qam", "Reword the docstring")
        push = self.git("push", "origin", "HEAD:main", env=self.env(), check=False)
        self.assertEqual(push.returncode, 0, push.stdout + push.stderr)
        self.assertEqual(self.remote_main(), self.git("rev-parse", "HEAD").stdout.strip())

        # Skipped on purpose: no measurement.
        before = len(self.experiments())
        self.git("apply", EAGER_DIFF)
        self.git("add", "-A")
        self.git("commit", "-qm", "Track runs, in a hurry")
        push = self.git("push", "origin", "HEAD:main", env=self.env(TTFB_LAB_SKIP="1"), check=False)
        self.assertEqual(push.returncode, 0, push.stderr)
        self.assertIn("skipped on purpose", push.stderr)
        self.assertEqual(len(self.experiments()), before)

    def test_3_an_unreachable_server_follows_the_policy(self):
        dead = f"http://127.0.0.1:{free_port()}"
        with open(os.path.join(self.work, "NOTES.md"), "a") as f:
            f.write("one more line\n")
        self.git("add", "-A")
        self.git("commit", "-qm", "Notes")
        self.git("config", "ttfb-lab.unreachable", "fail-open")
        push = self.git("push", "origin", "HEAD:main", env=self.env(TTFB_LAB_SERVER=dead), check=False)
        self.assertEqual(push.returncode, 0, push.stderr)
        self.assertIn("cannot be reached", push.stderr)
        self.assertIn("fail-open", push.stderr)

        with open(os.path.join(self.work, "NOTES.md"), "a") as f:
            f.write("and another\n")
        self.git("commit", "-qam", "More notes")
        self.git("config", "ttfb-lab.unreachable", "fail-closed")
        before = self.remote_main()
        push = self.git("push", "origin", "HEAD:main", env=self.env(TTFB_LAB_SERVER=dead), check=False)
        self.assertNotEqual(push.returncode, 0)
        self.assertIn("cannot be reached", push.stderr)
        self.assertIn("push refused", push.stderr)
        self.assertEqual(self.remote_main(), before)

    def test_4_the_ci_step(self):
        self.git("checkout", "-q", "-b", "feature", self.start)
        self.git("apply", EAGER_DIFF)
        self.git("add", "-A")
        self.git("commit", "-qm", "Track runs (feature branch)")
        script = os.path.join(SOURCE, "configs", "ci", "presubmit.sh")
        summary = os.path.join(self.lab.tmp, "ci-summary.md")
        junit = os.path.join(self.lab.tmp, "ci-junit.xml")
        env = self.env(TTFB_LAB_CLI=CLI_BIN, TTFB_LAB_REPO="example", TTFB_LAB_SUMMARY=summary, TTFB_LAB_JUNIT=junit)
        p = subprocess.run([script, "main"], cwd=self.work, capture_output=True, text=True, env=env, timeout=900)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("regression", p.stdout)
        with open(summary) as f:
            self.assertIn("**regression**", f.read())
        self.assertEqual(ET.parse(junit).getroot().find("testsuite").get("failures"), "1")
        env["TTFB_LAB_SERVER"] = f"http://127.0.0.1:{free_port()}"
        p = subprocess.run([script, "main"], cwd=self.work, capture_output=True, text=True, env=env, timeout=300)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("cannot be reached", p.stderr)

    def ci_checkout(self, name):
        """A CI runner's checkout of a branch with the eager import, with configs/ci/presubmit.sh
        copied in as the examples expect it in the user's repository."""
        self.git("checkout", "-q", "-B", "ci-branch", self.start)
        self.git("apply", EAGER_DIFF)
        self.git("add", "-A")
        self.git("commit", "-qm", "Track runs (merge request)")
        checkout = os.path.join(self.lab.tmp, name)
        subprocess.run(["git", "clone", "-q", "--branch", "ci-branch", self.work, checkout], check=True)
        os.makedirs(os.path.join(checkout, "configs", "ci"), exist_ok=True)
        shutil.copy(os.path.join(SOURCE, "configs", "ci", "presubmit.sh"), os.path.join(checkout, "configs", "ci"))
        self.git("checkout", "-q", "main")
        return checkout

    def runner_env(self, **extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith("TTFB_LAB_")}
        env["PATH"] = os.path.dirname(CLI_BIN) + os.pathsep + env.get("PATH", "")  # "the CLI on the runner"
        return {**env, **extra}

    def test_5_the_ci_examples_as_their_runners_run_them(self):
        with open(os.path.join(SOURCE, "configs", "ci", "github-actions.yml")) as f:
            gh = yaml.safe_load(f)
        # PyYAML reads the key `on` as True (YAML 1.1); GitHub reads it as "on".
        self.assertIn("pull_request", gh.get("on", gh.get(True)) or {})
        (job,) = gh["jobs"].values()
        checkout = self.ci_checkout("gh-checkout")
        expressions = {"vars.TTFB_LAB_SERVER": self.lab.url, "secrets.TTFB_LAB_TOKEN": self.lab.submit_token,
                       "github.base_ref": "main"}

        def fill(text):
            def one(m):
                self.assertIn(m.group(1), expressions, f"an expression the test does not know: {m.group(0)}")
                return expressions[m.group(1)]
            return re.sub(r"\$\{\{\s*(.+?)\s*\}\}", one, str(text))

        summary = os.path.join(self.lab.tmp, "github-step-summary.md")
        open(summary, "w").close()
        results, uploaded = [], None
        for step in job["steps"]:
            if "uses" in step:
                if step["uses"].startswith("actions/checkout@"):
                    self.assertEqual(step["with"]["fetch-depth"], 0, "the merge base must be in the clone")
                elif step["uses"].startswith("actions/upload-artifact@"):
                    uploaded = fill(step["with"]["path"])
                else:
                    self.fail(f"an action the test does not know: {step['uses']}")
                continue
            if results and results[-1] != 0 and "always()" not in str(step.get("if", "")):
                continue  # a failed step skips the rest, as on GitHub
            env = self.runner_env(GITHUB_STEP_SUMMARY=summary, GITHUB_ACTIONS="true",
                                  **{k: fill(v) for k, v in (step.get("env") or {}).items()})
            with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as script:
                script.write(fill(step["run"]))
            # GitHub's default shell for `run` on Linux.
            p = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", script.name], cwd=checkout,
                               capture_output=True, text=True, env=env, timeout=900)
            os.unlink(script.name)
            results.append(p.returncode)
            if "presubmit.sh" in step["run"]:
                self.assertEqual(p.returncode, 1, f"a confirmed regression fails the check:\n{p.stdout}{p.stderr}")
                self.assertIn("regression", p.stdout)
            else:
                self.assertEqual(p.returncode, 0, f"{step.get('name')}: {p.stderr}")
        with open(summary) as f:
            self.assertIn("**regression**", f.read(), "the verdict table is in the job's summary")
        self.assertIsNotNone(uploaded, "the JUnit report is kept as an artifact")
        with open(os.path.join(checkout, uploaded)) as f:
            junit_text = f.read()
        self.assert_every_workflow_regressed(ET.fromstring(junit_text), junit_text)

        with open(os.path.join(SOURCE, "configs", "ci", "gitlab-ci.yml")) as f:
            gl = yaml.safe_load(f)
        job = gl["ttfb-lab"]
        self.assertIn("merge_request_event", job["rules"][0]["if"])
        self.assertEqual(job["variables"]["GIT_DEPTH"], "0", "the merge base must be in the clone")
        checkout = self.ci_checkout("gl-checkout")
        env = self.runner_env(GITLAB_CI="true", CI_PIPELINE_SOURCE="merge_request_event",
                              CI_MERGE_REQUEST_TARGET_BRANCH_NAME="main", TTFB_LAB_SERVER=self.lab.url,
                              TTFB_LAB_TOKEN=self.lab.submit_token,
                              **{k: str(v) for k, v in job["variables"].items()})
        # The runner runs the script's lines in one shell that stops at the first failing line.
        p = subprocess.run(["bash", "-eo", "pipefail", "-c", "\n".join(job["script"])], cwd=checkout, capture_output=True,
                           text=True, env=env, timeout=900)
        self.assertEqual(p.returncode, 1, f"a confirmed regression fails the job:\n{p.stdout}{p.stderr}")
        for path in job["artifacts"]["paths"]:
            with open(os.path.join(checkout, path)) as f:
                self.assertIn("**regression**", f.read(), f"the Markdown artifact {path}")
        report = ET.parse(os.path.join(checkout, job["artifacts"]["reports"]["junit"])).getroot()
        self.assert_every_workflow_regressed(report, "the merge request's test report")

    def assert_every_workflow_regressed(self, junit, message):
        # No workflow is configured in these clones: the repository's whole suite is measured (the
        # eager import slows every workflow of the example repository; example-train, with the most
        # runs, is the one sure to be confirmed on a noisy machine).
        suite = junit.find("testsuite")
        failed = {case.get("name") for case in suite.iter("testcase") if case.find("failure") is not None}
        self.assertIn("example-train", failed, message)
        measured = {case.get("name") for case in suite.iter("testcase")}
        served = {w["name"] for w in self.lab.api("GET", "/api/v1/workflows")[1]["workflows"] if w["repo"] == "example"}
        self.assertEqual(measured, served, message)
        self.assertEqual(suite.get("errors"), "0", message)


if __name__ == "__main__":
    unittest.main(verbosity=2)
