"""Functional tests of experiments for infra owners (issue 16): the candidate is the base revision
run another way — another environment, a command prefix, another interpreter — on the real
server, real workers, a real PostgreSQL and the example training workload."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Lab, example_workflow_variant  # noqa: E402

# A fixed design: one block of this many runs per arm, one look, no rerun (the effects below
# are large, or checked to be absent at a strict level).
RUNS = 12

# As in test_presubmit: "not a regression" checked at alpha 0.002, so that it fails only when
# something is wrong (a false regression at most 1 time in 1000).
STRICT = "example-train-strict"
STRICT_WORKFLOW = {f"{STRICT}.toml": example_workflow_variant(STRICT, alpha=0.002)}

# A launcher-style wrapper: waits 150 ms, then runs the workflow's command. The example reaches
# its first batch in 80-400 ms here, so the candidate is slower by far more than any noise.
SLOW_PREFIX = ["sh", "-c", 'sleep 0.15; exec "$@"', "sh"]


class RuntimeExperiments(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lab = Lab(workers=2, extra_workflows=STRICT_WORKFLOW).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.lab.__exit__(*sys.exc_info())

    def post(self, body):
        full = {"repo": "example", "base": "main", "workflows": ["example-train"], **body}
        return self.lab.api("POST", "/api/v1/experiments", full, token=self.lab.submit_token)

    def test_bad_runtimes_are_refused_with_what_is_wrong_and_store_nothing(self):
        before = self.lab.count_experiments()
        cases = [
            ({}, "'candidate_env', 'candidate_command_prefix', 'candidate_interpreter' or 'dependency'"),
            ({"candidate_env": ["A=1"]}, "'candidate_env' must be an object"),
            ({"candidate_env": {"A-B": "1"}}, "bad variable name 'A-B'"),
            ({"candidate_env": {"1A": "1"}}, "bad variable name '1A'"),
            ({"candidate_env": {"TTFB_PROBE_FD": "1"}}, "TTFB_* variables are the lab's own"),
            ({"candidate_env": {"A": 1}}, "'candidate_env.A' must be a string"),
            ({"candidate_env": {"A": "x\u0000y"}}, "NUL"),
            ({"candidate_env": {f"V{i}": "1" for i in range(65)}}, "more than 64 variables"),
            ({"candidate_command_prefix": "nice -n 10"}, "must be an array of strings"),
            ({"candidate_command_prefix": []}, "is empty: give at least one word"),
            ({"candidate_command_prefix": ["nice", ""]}, "'candidate_command_prefix'[1] is empty"),
            ({"candidate_interpreter": ["python3", 3]}, "'candidate_interpreter'[1] must be a string"),
            ({"candidate_interpreter": ["x"] * 33}, "more than 32 words"),
            ({"candidate_env": {"A": "1"}, "workflows": ["no-such-workflow"]}, "unknown workflow 'no-such-workflow'"),
        ]
        for body, words in cases:
            status, out = self.post(body)
            self.assertEqual(status, 400, (body, out))
            self.assertEqual(out["error"]["code"], "invalid_argument", out)
            self.assertIn(words, out["error"]["message"], body)
        self.assertEqual(self.lab.count_experiments(), before, "a refused request stores nothing")

    def test_a_command_prefix_that_slows_start_up_is_a_regression_of_the_same_revision(self):
        # No --workflow: every workflow of the repository, the suite (example-train, its stdout-probe
        # twin, and the strict copy of it this lab adds).
        r = self.lab.cli("submit", "--repo", "example", "--base", "main",
                         "--runs", str(RUNS), "--wait", *[f"--prefix={w}" for w in SLOW_PREFIX])
        self.assertEqual(r.returncode, 1, f"exit code 1 means regression\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        self.assertIn("candidate the base revision", r.stdout)
        self.assertIn("runs with prefix sh -c sleep 0.15;", r.stdout)
        status, listed = self.lab.api("GET", "/api/v1/experiments?limit=1")
        self.assertEqual(status, 200)
        e = listed["experiments"][0]
        self.assertEqual(e["candidate"]["command_prefix"], SLOW_PREFIX)
        self.assertEqual(e["candidate"]["commit"], e["base"]["commit"], "both arms run the same revision")
        self.assertIsNone(e["candidate"]["env"])
        names = sorted(w["workflow"] for w in e["workflows"])
        self.assertEqual(len(names), 3, names)
        for w in e["workflows"]:
            res = w["result"]
            # 150 ms on a start-up of 80-200 ms on a quiet machine, up to ~400 ms with three
            # workflows' jobs sharing its two cores: +25% or more.
            self.assertGreater(res["effect_pct"], 25, (w["workflow"], res))
            self.assertEqual(w["verdict"], "regression", (w["workflow"], res))
            # The prefix reached the candidate's runs only: the baseline's are as fast as ever, so
            # the candidate's runs moved by about the 150 ms sleep. The Hodges-Lehmann shift is the
            # robust measure of that move; a difference of two medians of 12 runs at a CV of 15%
            # (two cores shared by three workflows) wanders by +-60 ms and once read 74 ms.
            self.assertGreater(res["rank_test"]["hl_shift_ms"], 75, res)
        self.assertEqual(e["verdict"], "regression", e)
        # One answer for the suite: every workflow slower, kept by Holm's correction, and the
        # geometric mean of the three effects with its interval.
        suite = e["suite"]
        self.assertEqual(suite["workflows"], 3)
        self.assertEqual(suite["counts"]["regression"], 3)
        self.assertEqual(sorted(suite["regressed"]), names)
        self.assertEqual(suite["verdict"], "regression")
        self.assertFalse(suite["certified"])
        self.assertEqual(suite["multiplicity"], "holm")
        effects = [w["result"]["effect_pct"] for w in e["workflows"]]
        self.assertGreaterEqual(suite["geomean_effect_pct"], min(effects) - 1e-9)
        self.assertLessEqual(suite["geomean_effect_pct"], max(effects) + 1e-9)
        self.assertLess(suite["ci_low_pct"], suite["geomean_effect_pct"])
        self.assertGreater(suite["ci_low_pct"], 0)
        self.assertIn("slower across the suite", suite["statement"])
        self.assertIn("suite: regression", r.stdout, "the CLI says the suite's answer")

    def test_an_environment_nothing_reads_is_not_a_regression(self):
        exp = self.lab.submit(workflows=(STRICT,), runs=RUNS,
                              candidate_env={"EXAMPLE_UNUSED_KNOB": "on", "LC_ALL": None})
        # (One workflow: no suite summary.)
        e = self.lab.wait_experiment(exp)
        self.assertEqual(e["status"], "done", e)
        self.assertEqual(e["candidate"]["env"], {"EXAMPLE_UNUSED_KNOB": "on", "LC_ALL": None})
        self.assertEqual(e["candidate"]["commit"], e["base"]["commit"])
        self.assertNotEqual(e["verdict"], "regression", e["workflows"][0]["result"])
        self.assertIsNone(e["suite"])

    def test_an_interpreter_override_replaces_the_commands_first_word(self):
        # A "Python" whose start-up costs 150 ms more: it waits, then runs the script it is given
        # as its first argument, as python3 would. The workflow's command is python3 train.py
        # ...: with the interpreter in place of python3 the candidate starts 150 ms later; were
        # it put before the command instead, it would be asked to run "python3" as a script and
        # every run would fail.
        slow_python = ["python3", "-c",
                       "import runpy, sys, time; time.sleep(0.15); sys.argv = sys.argv[1:]; "
                       "runpy.run_path(sys.argv[0], run_name='__main__')"]
        exp = self.lab.submit(runs=RUNS, candidate_interpreter=slow_python)
        e = self.lab.wait_experiment(exp)
        self.assertEqual(e["status"], "done", e)
        self.assertEqual(e["candidate"]["interpreter"], slow_python)
        res = e["workflows"][0]["result"]
        self.assertEqual(e["verdict"], "regression", res)
        self.assertGreater(res["median_candidate_ms"] - res["median_baseline_ms"], 100, res)
        # The script's own phases are reported from under the other interpreter.
        self.assertIn("imports", {p["name"] for p in res["phases"]}, res["phases"])


if __name__ == "__main__":
    unittest.main()
