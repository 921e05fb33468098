#!/usr/bin/env python3
"""The example workflow measured for real (README "Benchmarks"), against the server `./lab up`
started (TTFB_LAB_SERVER, TTFB_LAB_TOKEN from .lab/env; `./lab bench` does all of it):

1. an A/A calibration of example-train (the same commit in both arms): its noise, k, threshold,
   false-positive rate and power, as the server computes them;
2. the confirmed power (first stage and rerun) of the default design against slowdowns of 1, 2, 3,
   5 and 10% injected into those real A/A runs, its modelled alert rate, and the smallest
   slowdown confirmed with at least 90% power (bench/calibration_bench.cpp);
3. N A/A experiments (default 20) submitted like any pre-submit, candidate = base: how they end,
   how many runs they took, and how many confirmed regressions they raised (expected: none).

    python3 bench/example_workflow.py [--quick] [--aa N]
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

SERVER = os.environ.get("TTFB_LAB_SERVER", "http://127.0.0.1:8080")
TOKEN = os.environ.get("TTFB_LAB_TOKEN", "")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("TTFB_LAB_BUILD_DIR", os.path.join(ROOT, "build"))
CLI = os.environ.get("TTFB_LAB_CLI", os.path.join(BUILD, "cli", "ttfb-lab"))
WORKFLOW = "example-train"


def api(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(SERVER + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if TOKEN:
        req.add_header("Authorization", "Bearer " + TOKEN)
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read().decode())


def wait(ids, what):
    pending, out, t0 = set(ids), {}, time.time()
    while pending:
        for i in list(pending):
            e = api("GET", f"/api/v1/experiments/{i}")
            if e["status"] in ("done", "error", "cancelled"):
                out[i] = e
                pending.discard(i)
        print(f"\r  {what}: {len(out)}/{len(ids)} done, {time.time() - t0:.0f} s", end="", file=sys.stderr, flush=True)
        time.sleep(1)
    print(file=sys.stderr)
    return [out[i] for i in ids]


def main():
    quick = "--quick" in sys.argv
    n_aa = 5 if quick else 20
    if "--aa" in sys.argv:
        n_aa = int(sys.argv[sys.argv.index("--aa") + 1])
    runs, batches = (20, 2) if quick else (30, 4)

    print(f"## 1. A/A calibration of {WORKFLOW} ({batches} batches of {runs} runs per arm)\n", flush=True)
    t0 = time.time()
    r = subprocess.run([CLI, "calibrate", WORKFLOW, "--runs", str(runs), "--batches", str(batches)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"calibration failed:\n{r.stdout}\n{r.stderr}")
    print(r.stdout)
    print(f"(calibration took {time.time() - t0:.0f} s)\n")

    print("## 2. Confirmed power and alert rate of the default design on real A/A runs (resampled)\n", flush=True)
    w = api("GET", f"/api/v1/workflows/{WORKFLOW}")
    experiment = w["calibration"]["current"]["experiment_id"]
    samples = api("GET", f"/api/v1/experiments/{experiment}/samples")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(samples, f)
    r = subprocess.run([os.path.join(BUILD, "bench", "ttfb_calibration_bench"), "--samples", f.name,
                        "--floor", "1", "--effects", "1,2,3,5,10", "--max-runs", "60"],
                       capture_output=True, text=True)
    os.unlink(f.name)
    if r.returncode != 0:
        sys.exit(f"calibration bench failed:\n{r.stderr}")
    print(r.stdout)

    print(f"## 3. {n_aa} A/A experiments through the pre-submit path (candidate = base = main)\n", flush=True)
    ids = [api("POST", "/api/v1/experiments", {"repo": "example", "base": "main", "candidate": "main",
                                                 "workflows": [WORKFLOW], "title": f"A/A {i + 1}"})["id"]
           for i in range(n_aa)]
    done = wait(ids, "A/A experiments")
    verdicts, runs_used, confirmed, reruns = {}, [], 0, 0
    for e in done:
        verdicts[e["verdict"]] = verdicts.get(e["verdict"], 0) + 1
        res = e["workflows"][0]["result"] or {}
        look = res.get("look") or {}
        conf = res.get("confirmation") or {}
        rerun = conf.get("runs_per_arm", 0) if conf.get("status") in ("reproduced", "not_reproduced") else 0
        reruns += rerun > 0
        runs_used.append(look.get("runs_per_arm", 0) + rerun)
        if e["verdict"] in ("regression", "improvement") and res.get("confirmed"):
            confirmed += 1
    print("| verdict | experiments |\n|---|---|")
    for v, n in sorted(verdicts.items()):
        print(f"| {v} | {n} |")
    print(f"\nconfirmed regressions or improvements: {confirmed} of {n_aa} (expected: 0)")
    print(f"first stages sent to a rerun: {reruns} of {n_aa} (expected: about alpha/2 + alpha/2 = 10%)")
    print(f"runs per arm to a verdict, rerun included: mean {sum(runs_used) / len(runs_used):.1f}, max {max(runs_used)}")


if __name__ == "__main__":
    main()
