#!/usr/bin/env python3
"""Release gates, bisection and alerts, end to end on the example repository (issue 4): the real
server, a worker, PostgreSQL, git, and a local webhook sink (scripts/alert_sink.py).

One lab, scenarios in order (each leans on the facts of examples/example-repo.toml):
1. The webhook is down when gate v1.1 (v1.0..v1.1, one known culprit) blocks: the owner's alert
   is retried, and delivered once when the sink comes up on that port.
2. The gate's bisection names exactly the eager-import commit and its author; its alert reaches
   the sink once even though the server is SIGKILLed while delivering it (never resent).
3. A gate over neutral commits passes, and nobody is alerted.
4. A bisection of the whole history (the first commit with train.py .. main) names exactly the
   three culprits, each with its author, e-mail and phase (the first one is not alerted twice).
5. A commit that does not build inside the range is skipped and reported, not blamed.
6. A bisection from the root commit, which has no train.py, names the root (not main) as the
   broken end and suggests the first commit with train.py.
"""
import json
import os
import signal
import sys
import time
import tomllib
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SOURCE, Lab, example_workflow_variant, free_port  # noqa: E402

with open(os.path.join(SOURCE, "examples", "example-repo.toml"), "rb") as f:
    FACTS = tomllib.load(f)
REGRESSIONS = {r["kind"]: r for r in FACTS["regressions"]}
RELEASES = {r["tag"]: r["commit"] for r in FACTS["releases"]}
EAGER = REGRESSIONS["eager-import"]
TELEMETRY = REGRESSIONS["blocking-telemetry"]
REPR = REGRESSIONS["repr-memo"]

WEBHOOK_PORT = free_port()
CONFIG = f"""
[repos.example.alerts]
webhook_url = "http://127.0.0.1:{WEBHOOK_PORT}/hook"
webhook_timeout_seconds = 5
[alerts]
max_attempts = 20
backoff_initial_seconds = 0.5
backoff_max_seconds = 2
poll_ms = 100
[bisect]
max_parallel_probes = 1   # the two workers share this machine's 2 cores: probes measured at once would slow each other unevenly
"""

# The neutral gate's workflow: example-train as configured, with a budget of 20 runs per arm. A
# gate over commits that do not differ runs to its budget whatever it is (60 runs per arm, most
# of this file's time); "passed, nothing alerted" means the same at 20. Only that gate uses it:
# the other gates and the bisections keep example-train's own policy (the 15% culprit of
# v1.0..v1.2 needs its budget).
NEUTRAL_WORKFLOW = example_workflow_variant("example-train-budget-20", max_runs_per_arm=20)


def webhook_bodies(records, kind=None):
    """Webhook requests the sink accepted (not the ones it rejected), optionally of one kind."""
    return [r["body"] for r in records
            if r.get("channel") == "webhook" and not r.get("rejected") and (kind is None or r["body"]["kind"] == kind)]


class ReleaseGateTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # One worker: on this 2-core machine two workers measuring at once slow each other
        # unevenly, and a bisection compares commits measured in different jobs (a gate's own
        # experiment interleaves its arms inside each job and is immune; probes are not).
        cls.lab = Lab(workers=1, extra_config=CONFIG,
                      extra_workflows={"example-train-budget-20.toml": NEUTRAL_WORKFLOW}).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.lab.__exit__(*sys.exc_info())

    # ---- helpers -----------------------------------------------------------------------------
    def gate(self, name, base, candidate, **extra):
        body = {"name": name, "repo": "example", "base": base, "candidate": candidate, "workflows": ["example-train"],
                **extra}
        status, out = self.lab.api("POST", "/api/v1/releases", body, token=self.lab.submit_token)
        self.assertEqual(status, 201, out)
        self.assertEqual(out["status"], "pending")
        return out

    def wait_release(self, name, settled=True, timeout=400):
        def ready():
            _, r = self.lab.api("GET", f"/api/v1/releases/{name}")
            if r["status"] == "pending":
                return None
            if settled and any(b["status"] in ("verifying", "searching") for b in r["bisections"]):
                return None
            return r
        return self.lab.wait_until(ready, timeout, f"release {name} to be decided")

    def wait_bisection(self, bid, timeout=400):
        def done():
            _, b = self.lab.api("GET", f"/api/v1/bisections/{bid}")
            return b if b["status"] not in ("verifying", "searching") else None
        return self.lab.wait_until(done, timeout, f"bisection {bid} to finish")

    def alerts(self, **query):
        q = "&".join(f"{k}={v}" for k, v in query.items())
        status, out = self.lab.api("GET", "/api/v1/alerts" + ("?" + q if q else ""))
        self.assertEqual(status, 200, out)
        return out["alerts"]

    # ---- scenarios ---------------------------------------------------------------------------
    def test_1_blocked_gate_finds_the_culprit_and_alerts_once(self):
        lab = self.lab
        # Bad requests first: each says what is wrong, and nothing is stored.
        status, out = lab.api("POST", "/api/v1/releases", {"name": "x", "repo": "example", "base": "v1.0",
                                                             "candidate": "no-such-tag"}, token=lab.submit_token)
        self.assertEqual(status, 400, out)
        self.assertIn("no-such-tag", out["error"]["message"])
        status, out = lab.api("POST", "/api/v1/releases", {"name": "x", "repo": "example", "base": "v1.1",
                                                             "candidate": "v1.0"}, token=lab.submit_token)
        self.assertEqual(status, 400, out)
        self.assertIn("first-parent", out["error"]["message"])
        status, out = lab.api("POST", "/api/v1/releases", {"name": "bad name!", "repo": "example", "base": "v1.0",
                                                             "candidate": "v1.1"}, token=lab.submit_token)
        self.assertEqual(status, 400, out)
        status, out = lab.api("POST", "/api/v1/releases", {"name": "x", "repo": "example", "base": "v1.0",
                                                             "candidate": "v1.1", "workflows": ["nope"]},
                              token=lab.submit_token)
        self.assertEqual(status, 400, out)
        self.assertIn("nope", out["error"]["message"])
        self.assertEqual(lab.api("GET", "/api/v1/releases")[1]["count"], 0)

        self.gate("v1.1", "v1.0", "v1.1", owner="Release Captain", owner_email="rc@example.com")
        status, out = lab.api("POST", "/api/v1/releases", {"name": "v1.1", "repo": "example", "base": "v1.0",
                                                             "candidate": "v1.1"}, token=lab.submit_token)
        self.assertEqual(status, 409, out)

        # Blocked; the webhook is down, so the owner's alert waits and is retried.
        r = self.wait_release("v1.1", settled=False)
        self.assertEqual(r["status"], "blocked", r)
        self.assertIn("example-train", r["reason"])
        self.assertEqual(r["experiment"]["workflows"][0]["verdict"], "regression")
        self.assertEqual(len(r["bisections"]), 1)

        def failed_attempt():
            a = self.alerts(kind="release_blocked")
            return a if a and a[0]["attempts"] >= 2 and a[0]["last_error"] else None
        a = lab.wait_until(failed_attempt, 60, "a failed delivery attempt of the owner's alert")[0]
        self.assertEqual(a["status"], "pending")
        self.assertEqual(a["recipient"]["email"], "rc@example.com")
        self.assertEqual(lab.received(), [])

        # The sink comes up on the configured port; it answers slowly, so the server can be
        # killed while it delivers the culprit's alert later on.
        lab.start_sink(http_port=WEBHOOK_PORT, delay=1.5)
        lab.wait_until(lambda: webhook_bodies(lab.received(), "release_blocked"), 60, "the owner's alert")
        owner_alert = webhook_bodies(lab.received(), "release_blocked")[0]
        self.assertIn("v1.1", owner_alert["text"])
        self.assertIn("%", owner_alert["text"])
        self.assertTrue(owner_alert["url"].endswith("/#/releases/v1.1"))

        # The culprit: exactly the eager-import commit, with its author and effect.
        r = self.wait_release("v1.1")
        b = self.wait_bisection(r["bisections"][0]["id"])
        self.assertEqual(b["status"], "found", b["message"])
        self.assertEqual([c["commit"] for c in b["culprits"]], [EAGER["commit"]], b["culprits"])
        c = b["culprits"][0]
        self.assertEqual((c["author"], c["email"], c["subject"]), (EAGER["author_name"], EAGER["author_email"], EAGER["subject"]))
        self.assertEqual(c["parent"], EAGER["parent"])
        self.assertGreaterEqual(c["effect_pct"], EAGER["min_effect_pct"] * 0.5)
        self.assertLess(c["ci_low_pct"], c["effect_pct"])
        self.assertGreater(c["ci_low_pct"], 0.0)
        self.assertEqual(c["phase"], EAGER["phase"])
        self.assertGreater(b["cost"]["runs"], 0)
        self.assertGreater(b["cost"]["reused_runs"], 0, "the gate's runs of the ends are reused")
        self.assertGreaterEqual(b["cost"]["jobs"], 1)
        self.assertEqual(b["cost"]["rounds"], len(b["steps"]))
        # Every probe ran beside the good end; the culprit's sandwich beside its parent, a block
        # of each at least; a part beside the culprit, its two ends side by side (a part of more
        # than one commit: one of one commit is its sandwich).
        jobs = [j for step in b["steps"] for j in step["jobs"]]
        probes = [j for j in jobs if not j["sandwich"] and not j.get("part") and j["index"] != 0]
        self.assertTrue(probes and all(j["beside"] == 0 for j in probes), jobs)
        parts = [j for j in jobs if j.get("part")]
        self.assertTrue(all(not j["sandwich"] and j["index"] > j["beside"] + 1 for j in parts), jobs)
        self.assertEqual(b["cost"]["part_runs"], 2 * sum(j["runs"] for j in parts), b["cost"])
        parent_index = next(x["index"] for x in b["commits"] if x["commit"] == EAGER["parent"])
        self.assertTrue([j for j in jobs if j["sandwich"] and j["beside"] == parent_index], jobs)
        self.assertGreaterEqual(b["cost"]["sandwich_runs"], 20)
        self.assertEqual(c["runs"], c["parent_runs"])
        self.assertGreater(b["reference_ms"], 0)
        self.assertEqual(b["range"]["commits"], len(b["commits"]))
        self.assertEqual(b["commits"][0]["commit"], RELEASES["v1.0"])
        self.assertEqual(b["commits"][-1]["commit"], RELEASES["v1.1"])

        # Kill the server while the culprit's alert is on the wire: the sink has it (recorded
        # before its delay), the row is left 'sending', and after the restart it is never resent.
        lab.wait_until(lambda: webhook_bodies(lab.received(), "culprit"), 60, "the culprit's alert to be on the wire")
        lab.stop_server(signal.SIGKILL)
        lab.start_server()
        culprit_alert = webhook_bodies(lab.received(), "culprit")[0]
        self.assertEqual(culprit_alert["recipient"]["email"], EAGER["author_email"])
        self.assertIn(EAGER["commit"][:7], culprit_alert["text"])
        self.assertIn(EAGER["phase"], culprit_alert["text"])
        self.assertEqual(culprit_alert["fields"]["commit"], EAGER["commit"])

        def settled():
            a = self.alerts(kind="culprit")
            return a if a and a[0]["status"] in ("delivered", "unknown", "failed") else None
        a = lab.wait_until(settled, 90, "the interrupted delivery to be settled")[0]
        self.assertEqual(a["status"], "unknown", a)
        time.sleep(2)
        self.assertEqual(len(webhook_bodies(lab.received(), "culprit")), 1, "delivered at most once")
        self.assertEqual(len(webhook_bodies(lab.received(), "release_blocked")), 1)

    def test_2_neutral_range_passes_without_alerts(self):
        lab = self.lab
        before = len(self.alerts())
        self.gate("v1.1-rc2", "regression/eager-import", "v1.1", workflows=["example-train-budget-20"])
        r = self.wait_release("v1.1-rc2")
        self.assertEqual(r["status"], "passed", r)
        self.assertEqual(r["bisections"], [])
        # "the same within the threshold" needs more runs than the budget at this noise: either way,
        # nothing slower was shown, and the gate says which.
        self.assertIn(r["experiment"]["workflows"][0]["verdict"], ("no_change", "inconclusive"))
        if r["experiment"]["workflows"][0]["verdict"] == "inconclusive":
            self.assertIn("not decided", r["reason"])
        time.sleep(1)
        self.assertEqual(len(self.alerts()), before, "a passed gate alerts nobody")
        self.assertEqual([a for a in webhook_bodies(lab.received()) if "v1.1-rc2" in a["text"]], [])

    def test_3_the_whole_history_names_its_three_culprits(self):
        lab = self.lab
        # From the first commit that has train.py (the root commit has no trainer yet) to main:
        # 18 commits, three known regressions of different sizes and phases, the rest neutral.
        first = lab.git("log", "--format=%H", "--diff-filter=A", "--reverse", "main", "--", "train.py").split()[0]
        status, b = lab.api("POST", "/api/v1/bisections", {"repo": "example", "workflow": "example-train", "good": first,
                                                             "bad": "main"}, token=lab.submit_token)
        self.assertEqual(status, 201, b)
        self.assertIn(b["status"], ("verifying", "searching"))
        b = self.wait_bisection(b["id"], timeout=1500)
        detail = json.dumps({"message": b["message"], "total": b["total_effect_pct"],
                             "culprits": [(c["commit"][:8], c["effect_pct"]) for c in b["culprits"]],
                             "parts": b["parts"], "commits": [(c["index"], c["runs"], c["median_ms"]) for c in b["commits"]]})
        self.assertEqual(b["status"], "found", detail)
        # Exactly the three, in range order, each with its author, e-mail and phase: no neutral
        # commit blamed, and the smaller ones beside the largest are not left out.
        known = [EAGER, TELEMETRY, REPR]
        self.assertEqual([c["commit"] for c in b["culprits"]], [k["commit"] for k in known], detail)
        for c, k in zip(b["culprits"], known):
            self.assertEqual(c["author"], k["author_name"])
            self.assertEqual(c["email"], k["author_email"])
            self.assertEqual(c["phase"], k["phase"], detail)
            self.assertGreater(c["ci_low_pct"], 0.0, detail)
            self.assertEqual(c["runs"], c["parent_runs"], "the sandwich measures the pair side by side")
        # Every other part of the range is decided and reported, and what the culprits leave
        # unexplained comes with its interval.
        indices = {c["commit"]: c["index"] for c in b["commits"]}
        self.assertGreaterEqual(len(b["parts"]), 1, detail)
        for p in b["parts"]:
            self.assertIn(p["state"], ("same", "faster", "not_slower", "unsure"), detail)
            self.assertTrue(p["reason"], detail)
            for k in known:
                self.assertFalse(p["good_index"] < indices[k["commit"]] <= p["bad_index"],
                                 f"a part without a culprit holds {k['kind']}: {detail}")
        self.assertIsNotNone(b["remainder_pct"], detail)
        self.assertLessEqual(b["remainder_ci_low_pct"], b["remainder_pct"])
        self.assertLessEqual(b["remainder_pct"], b["remainder_ci_high_pct"])
        if "sink" not in lab.procs:  # this test run alone
            lab.start_sink(http_port=WEBHOOK_PORT)
        for k in (TELEMETRY, REPR):
            lab.wait_until(lambda: [a for a in webhook_bodies(lab.received(), "culprit")
                                    if a["fields"]["commit"] == k["commit"]], 60, f"the alert of {k['kind']}")
        self.assertLessEqual(len([a for a in webhook_bodies(lab.received(), "culprit")
                                  if a["fields"]["commit"] == EAGER["commit"]]), 1)

        # Bad requests: unknown workflow, same commit, a range that is not first-parent.
        for body, words in (({"workflow": "nope", "good": "v1.0", "bad": "v1.1"}, "nope"),
                            ({"workflow": "example-train", "good": "v1.1", "bad": "v1.1"}, "same commit"),
                            ({"workflow": "example-train", "good": "v1.1", "bad": "v1.0"}, "first-parent")):
            status, out = lab.api("POST", "/api/v1/bisections", {"repo": "example", **body}, token=lab.submit_token)
            self.assertEqual(status, 400, out)
            self.assertIn(words, out["error"]["message"])

    def test_4_a_commit_that_does_not_build_is_skipped_and_reported(self):
        lab = self.lab
        # v1.0 -> a commit with a syntax error (the byte-compiling build fails) -> its fix -> the
        # eager import, cherry-picked: the culprit is the last one, never the broken one.
        wt = os.path.join(lab.tmp, "broken-wt")
        lab.git("worktree", "add", "-b", "broken-range", wt, "v1.0")
        ident = ["-c", "user.name=Bo Ken", "-c", "user.email=bo.ken@example.com"]
        with open(os.path.join(wt, "trainer", "half_done.py"), "w") as f:
            f.write("def half_done(:\n")
        lab.git("add", ".", cwd=wt)
        lab.git(*ident, "commit", "-qm", "Half-finished refactor that does not compile", cwd=wt)
        broken = lab.git("rev-parse", "HEAD", cwd=wt)
        lab.git("rm", "-q", "trainer/half_done.py", cwd=wt)
        lab.git(*ident, "commit", "-qm", "Finish the refactor", cwd=wt)
        lab.git(*ident, "cherry-pick", EAGER["commit"], cwd=wt)
        culprit = lab.git("rev-parse", "HEAD", cwd=wt)

        status, b = lab.api("POST", "/api/v1/bisections", {"repo": "example", "workflow": "example-train", "good": "v1.0",
                                                             "bad": "broken-range"}, token=lab.submit_token)
        self.assertEqual(status, 201, b)
        b = self.wait_bisection(b["id"])
        self.assertEqual(b["status"], "found", b["message"])
        # The commit that does not build is reported with the build's error and never blamed.
        self.assertEqual([x["commit"] for x in b["broken"]], [broken])
        self.assertIn("build", b["broken"][0]["error"])
        self.assertNotIn(broken, [c["commit"] for c in b["culprits"]])
        states = {c["commit"]: c["state"] for c in b["commits"]}
        self.assertEqual(states[broken], "broken")
        # The culprit is the cherry-picked eager import, not the commit after the broken one (the
        # same tree as v1.0).
        self.assertEqual([c["commit"] for c in b["culprits"]], [culprit], json.dumps(b["commits"]))
        self.assertEqual(states[culprit], "culprit")

    def test_5_a_good_end_that_cannot_run_names_it(self):
        lab = self.lab
        # From the root commit (a README and a licence, no train.py yet) to main: the first job
        # runs main beside the root, and the root's arm cannot start. The broken one is the root,
        # not main, and the bisection says where the workflow's files first exist.
        root = lab.git("rev-list", "--max-parents=0", "main")
        first_with_train = lab.git("log", "--format=%H", "--diff-filter=A", "--reverse", "main", "--",
                                   "train.py").splitlines()[0]
        main = lab.git("rev-parse", "main")
        self.assertNotEqual(first_with_train, root)
        subject = lab.git("log", "-1", "--format=%s", first_with_train)
        started = time.monotonic()
        status, b = lab.api("POST", "/api/v1/bisections", {"repo": "example", "workflow": "example-train", "good": root,
                                                             "bad": "main"}, token=lab.submit_token)
        self.assertEqual(status, 201, b)
        b = self.wait_bisection(b["id"], timeout=180)
        self.assertEqual(b["status"], "broken", b["message"])
        self.assertEqual([x["commit"] for x in b["broken"]], [root], json.dumps(b["broken"]))
        self.assertNotIn(main, [x["commit"] for x in b["broken"]])
        self.assertIn("train.py", b["broken"][0]["error"])
        self.assertIn("baseline", b["broken"][0]["error"])
        states = {c["commit"]: c["state"] for c in b["commits"]}
        self.assertEqual(states[root], "broken")
        self.assertEqual(states[main], "untested")
        # The message names the good end and suggests the first commit with train.py.
        self.assertIn("good end", b["message"])
        self.assertIn(root[:12], b["message"])
        self.assertIn(first_with_train[:12], b["message"])
        self.assertIn(subject, b["message"])
        self.assertIn("bisect from there", b["message"])
        self.assertIsNotNone(b["suggested_good"], b["message"])
        self.assertEqual(b["suggested_good"]["commit"], first_with_train)
        self.assertEqual(b["suggested_good"]["subject"], subject)
        self.assertEqual(b["suggested_good"]["index"], 1)
        self.assertEqual(b["suggested_good"]["paths"], ["train.py"])
        self.assertEqual(b["culprits"], [])
        self.assertEqual(b["cost"]["jobs"], 1, "one job: its first run fails")
        # The list shows the suggestion too.
        _, listed = lab.api("GET", "/api/v1/bisections?repo=example&status=broken")
        mine = [x for x in listed["bisections"] if x["id"] == b["id"]]
        self.assertEqual(mine[0]["suggested_good"]["commit"], first_with_train)
        print(f"  a good end that cannot run: reported in {time.monotonic() - started:.1f} s: {b['message']}",
              file=sys.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
