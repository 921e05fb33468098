#!/usr/bin/env python3
"""The dashboard in a real browser (issue 5): Debian's chromium driven by playwright-core
(tests/browser/visit_pages.mjs) against a server filled by a real run of the example repository:
a calibration, a pre-submit experiment that regresses, a release gate that blocks and is bisected
to its culprit (alerted to a local webhook sink), and a neutral experiment watched while it runs.

Every page loads without console errors or failed requests, holds its layout on a laptop and a
phone (nothing sticks out sideways), shows the gate's status and the culprit, and draws its plots
(a non-empty canvas or an SVG). Screenshots of each page go to BUILD/screenshots/.
"""
import json
import os
import subprocess
import sys
import tomllib
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "functional"))
from harness import BUILD, SOURCE, Lab, free_port  # noqa: E402

with open(os.path.join(SOURCE, "examples", "example-repo.toml"), "rb") as f:
    FACTS = tomllib.load(f)
EAGER = {r["kind"]: r for r in FACTS["regressions"]}["eager-import"]
SHOTS = os.path.join(BUILD, "screenshots")
WEBHOOK_PORT = free_port()
CONFIG = f"""
[repos.example.alerts]
webhook_url = "http://127.0.0.1:{WEBHOOK_PORT}/hook"
[alerts]
poll_ms = 100
[bisect]
max_parallel_probes = 1
"""


class DashboardTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lab = lab = Lab(workers=1, extra_config=CONFIG).__enter__()
        try:
            lab.start_sink(http_port=WEBHOOK_PORT)
            # A calibration (the workflow page's noise, threshold and ROC curve).
            status, out = lab.api("POST", "/api/v1/workflows/example-train/calibrate", {"runs_per_arm": 10, "batches": 2},
                                  token=lab.submit_token)
            assert status == 202, out
            lab.wait_experiment(out["experiment_id"])
            # A pre-submit regression.
            cls.presubmit = lab.wait_experiment(lab.submit("eager-import.diff"))
            assert cls.presubmit["verdict"] == "regression", cls.presubmit
            # A release gate that blocks, and its bisection.
            status, out = lab.api("POST", "/api/v1/releases", {"name": "v1.1", "repo": "example", "base": "v1.0",
                                                               "candidate": "v1.1", "owner": "Rita Release",
                                                               "owner_email": "rita@example.com"}, token=lab.submit_token)
            assert status == 201, out

            def settled():
                _, r = lab.api("GET", "/api/v1/releases/v1.1")
                done = r["status"] != "pending" and r["bisections"] and all(
                    b["status"] not in ("verifying", "searching") for b in r["bisections"])
                return r if done else None
            cls.release = lab.wait_until(settled, 400, "the gate and its bisection")
            assert cls.release["status"] == "blocked", cls.release
            cls.bisection = cls.release["bisections"][0]
            lab.wait_until(lambda: [a for a in lab.api("GET", "/api/v1/alerts")[1]["alerts"]
                                    if a["kind"] == "culprit" and a["status"] == "delivered"], 60, "the culprit's alert")
        except BaseException:
            cls.lab.__exit__(*sys.exc_info())
            raise

    @classmethod
    def tearDownClass(cls):
        cls.lab.__exit__(*sys.exc_info())

    def visit(self, pages):
        proc = subprocess.run(["node", os.path.join(SOURCE, "tests", "browser", "visit_pages.mjs"), "--base", self.lab.url,
                               "--out", SHOTS, "--pages", json.dumps(pages)],
                              capture_output=True, text=True, timeout=400)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        results = {r["name"]: r for r in json.loads(proc.stdout)}
        for name, r in results.items():
            with self.subTest(page=name):
                self.assertNotIn("failure", r, r.get("failure"))
                self.assertEqual(r["page_errors"], [], name)
                if name == "missing":  # the API's 404 is the one failed request, and it is said on the page
                    self.assertTrue(r["failed_requests"] and all("/api/v1/bisections/999999" in f and "404" in f
                                                                 for f in r["failed_requests"]), r["failed_requests"])
                    self.assertTrue(all("404" in e for e in r["console_errors"]), r["console_errors"])
                else:
                    self.assertEqual(r["console_errors"], [], name)
                    self.assertEqual(r["failed_requests"], [], name)
                self.assertLessEqual(r["scroll_width"], r["viewport_width"] + 1, f"{name}: the page is wider than the screen")
                self.assertTrue(os.path.getsize(r["screenshot"]) > 5000, r["screenshot"])
        return results

    def drawn(self, r):
        return [c for c in r["canvases"] if c["drawn"] and c["width"] > 100 and c["height"] > 100]

    def test_pages(self):
        culprit = EAGER["commit"]
        exp_id = self.presubmit["id"]
        # A neutral experiment, opened while it runs: the page follows it to its verdict. 12 runs
        # per arm, fixed: its one job (about 15 s) outlasts the page's opening, and its verdict
        # (no change or inconclusive) comes without the 60 runs per arm the adaptive budget takes.
        # Its candidate also runs with a variable nothing reads: the page says what it runs with. It
        # runs both workflows of the repository, so its page ends with the suite's summary, plotted.
        live_id = self.lab.submit("neutral.diff", runs=12, workflows=("example-train", "example-train-stdout"),
                                  candidate_env={"EXAMPLE_UNUSED_KNOB": "on", "LC_ALL": None})
        r = self.visit([
            {"name": "experiment-live", "hash": f"#/experiments/{live_id}", "wait": "main h1",
             "wait_text": ["across the suite"], "wait_seconds": 240},
            {"name": "releases", "hash": "#/releases", "wait": "main table", "phone": True, "keyboard": True},
            {"name": "release", "hash": "#/releases/v1.1", "wait": ".card", "phone": True},
            {"name": "experiment", "hash": f"#/experiments/{exp_id}", "wait": ".uplot"},
            {"name": "bisection", "hash": f"#/bisections/{self.bisection['id']}", "wait": ".uplot", "phone": True},
            {"name": "workflow", "hash": "#/workflows/example-train", "wait": ".uplot"},
            {"name": "fleet", "hash": "#/fleet", "wait": "main svg", "steady": True},
            {"name": "alerts", "hash": "#/alerts", "wait": "main table"},
            {"name": "experiments", "hash": "#/experiments", "wait": "main table"},
            {"name": "bisections", "hash": "#/bisections", "wait": ".card"},
            {"name": "workflows", "hash": "#/workflows", "wait": "main table"},
            {"name": "missing", "hash": "#/bisections/999999", "wait": ".error"},
        ])

        live = r["experiment-live"]
        self.assertFalse({"no change", "inconclusive"} & set(live["text_before"].split("\n")[0].split()),
                         "opened before its verdict")
        self.assertTrue("no change" in live["text"] or "inconclusive" in live["text"], live["text"][:300])
        self.assertIn("candidate runs with", live["text"])
        self.assertIn("EXAMPLE_UNUSED_KNOB=on; unset LC_ALL", live["text"])
        self.assertIn("The suite", live["text"])
        self.assertIn("geometric mean", live["text"])
        self.assertIn("across the suite", live["text"])

        rel = r["releases"]
        self.assertIn("v1.1", rel["text"])
        self.assertIn("blocked", rel["text"])
        self.assertIn("regression", rel["text"], "the workflow x verdict matrix")
        self.assertIn(culprit[:7], rel["text"], "a blocked gate links to its culprit")
        self.assertEqual(rel["focused"], "Releases", "Tab from the top reaches the first section link")
        self.assertEqual(rel["after_enter"], "#/releases")
        self.assertIn("blocked", r["releases-phone"]["text"])

        page = r["release"]
        self.assertIn("blocked", page["h1"])
        self.assertIn(EAGER["subject"], page["text"])
        self.assertIn(EAGER["author_name"], page["text"])
        self.assertIn("v1.1", page["title"])

        exp = r["experiment"]
        self.assertTrue(self.drawn(exp), "the arms' distributions are plotted")
        self.assertGreaterEqual(exp["svgs"], 1, "the phase bars")
        for words in ("regression", "confirmed", "imports", "baseline", "candidate", "download", "decided by",
                      "CPU time to first batch"):
            self.assertIn(words, exp["text"])
        self.assertIn("candidate, rerun (", exp["text"], "the confirmation rerun is drawn apart from the deciding runs")

        bis = r["bisection"]
        self.assertTrue(self.drawn(bis), "the probed commits' medians are plotted")
        self.assertIn(culprit[:7], bis["text"])
        self.assertIn(EAGER["author_name"], bis["text"])
        self.assertIn(EAGER["subject"], bis["text"])
        self.assertIn("runs measured", bis["text"], "the cost")
        self.assertIn(culprit[:7], r["bisection-phone"]["text"])

        wf = r["workflow"]
        self.assertGreaterEqual(len(self.drawn(wf)), 2, "TTFB over time and the ROC curve")
        self.assertIn("threshold", wf["text"])
        self.assertIn("base main", wf["text"], "the baseline over time, one line per base")
        self.assertIn("base v1.0", wf["text"], "the release gate's base is a line of its own")
        self.assertIn("A/A noise", wf["text"])

        fleet = r["fleet"]
        self.assertIn("w1", fleet["text"])
        self.assertIn("alive", fleet["text"])
        self.assertGreaterEqual(fleet["svgs"], 1, "jobs by state")
        self.assertTrue(fleet["steady"], f"a poll with nothing new keeps the page (and the keyboard focus) as it is: {fleet.get('steady_changes')}")

        alerts = r["alerts"]
        self.assertIn("culprit", alerts["text"])
        self.assertIn("delivered", alerts["text"])
        self.assertIn(EAGER["author_email"], alerts["text"])

        self.assertIn("example-train", r["workflows"]["text"])
        self.assertIn(str(exp_id), r["experiments"]["text"])
        self.assertIn(culprit[:7], r["bisections"]["text"])
        self.assertIn("does not exist", r["missing"]["text"], "a bad deep link says what is wrong")

    def test_static_files(self):
        # The page comes from the server with a content security policy; nothing outside web/ does.
        with urllib.request.urlopen(self.lab.url + "/") as r:
            self.assertEqual(r.headers["Content-Type"], "text/html; charset=utf-8")
            self.assertIn("default-src 'self'", r.headers["Content-Security-Policy"])
            self.assertIn("/assets/app.js", r.read().decode())
        with urllib.request.urlopen(self.lab.url + "/vendor/uPlot.iife.min.js") as r:
            self.assertTrue(r.headers["Content-Type"].startswith("text/javascript"))
        for path in ("/assets/app.sh", "/vendor/nope.js", "/node_modules/uplot/package.json"):
            status, _ = self.lab.api("GET", path)
            self.assertEqual(status, 404, path)
        # A '..' segment, encoded or not, is refused before any file is looked up.
        status, body = self.lab.api("GET", "/assets/..%2F..%2Flab")
        self.assertEqual(status, 400, body)

    def test_the_api_the_pages_read(self):
        lab = self.lab
        status, q = lab.api("GET", "/api/v1/jobs?state=done&limit=5")
        self.assertEqual(status, 200, q)
        self.assertLessEqual(len(q["jobs"]), 5)
        self.assertTrue(q["jobs"] and all(j["state"] == "done" for j in q["jobs"]), q)
        self.assertGreaterEqual(q["counts"]["done"], len(q["jobs"]))
        self.assertEqual(set(q["counts"]), {"queued", "running", "done", "failed", "cancelled"})
        self.assertEqual(lab.api("GET", "/api/v1/jobs?state=nope")[0], 400)
        status, samples = lab.api("GET", f"/api/v1/experiments/{self.presubmit['id']}/samples")
        self.assertEqual(status, 200, samples)
        stages = {x["stage"] for x in samples["samples"]}
        self.assertEqual(stages, {"block", "confirmation"}, "a confirmed regression's runs, by the stage that measured them")
        status, hist = lab.api("GET", "/api/v1/workflows/example-train/history")
        self.assertEqual(status, 200, hist)
        mine = [e for e in hist["experiments"] if e["id"] == self.presubmit["id"]]
        self.assertEqual(len(mine), 1, hist)
        self.assertGreater(mine[0]["baseline_median_ms"], 0)
        self.assertEqual(mine[0]["base_ref"], "main")
        self.assertRegex(mine[0]["base_commit"], "^[0-9a-f]{40}$")
        self.assertGreater(mine[0]["candidate_median_ms"], mine[0]["baseline_median_ms"])
        self.assertGreater(mine[0]["effect_pct"], 0)
        self.assertNotIn("bisect", {e["purpose"] for e in hist["experiments"]})
        self.assertEqual(len(hist["calibrations"]), 1)
        self.assertEqual(lab.api("GET", "/api/v1/workflows/nope/history")[0], 404)
        status, diff = lab.api("GET", f"/api/v1/experiments/{self.presubmit['id']}/diff")
        self.assertEqual(status, 200)
        self.assertIn("diff --git", diff)


if __name__ == "__main__":
    unittest.main(verbosity=2)
