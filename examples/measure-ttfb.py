#!/usr/bin/env python3
"""Time the example trainer the way a ttfb-lab worker does, without the lab.

    python3 examples/measure-ttfb.py [--runs 20] [--warmup 1] ARM [ARM ...]

An ARM is a directory holding a checkout of the example repository, or REPO@REV (that
revision of the git repository REPO), or REPO@REV+DIFF (the same with the diff file DIFF
applied at the root).  REPO@REV arms are exported to a temporary directory and built with
the workflow's build command (python3 -m compileall -q .).  Runs are interleaved across
the arms (A B B A ...) after the warm-up runs.  Every run gets a pipe in TTFB_PROBE_FD;
TTFB is the time from just before the process is started to the `first_batch` line, and
the process group is killed right after it (stop_after_first_batch).  The environment is
scrubbed like the worker's: PATH=/usr/local/bin:/usr/bin:/bin plus the shrink env of
configs/workflows/example-train.toml (PYTHONHASHSEED=0, TRAINER_LOG_LEVEL=warning).

Prints, per directory, the median TTFB, its coefficient of variation (stdev/mean), and the
median of each phase; with two or more directories also the change of each median
against the first one.
"""

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

SHRINK_ARGS = ["--steps", "1", "--device", "cpu", "--tiny"]
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "PYTHONHASHSEED": "0", "TRAINER_LOG_LEVEL": "warning"}


def run_once(workdir, command, timeout=60.0):
    r, w = os.pipe()
    st = os.fstat(w)  # the pipe's identity: the probe writes only to it (not to a spawned child's fd w)
    env = dict(ENV, TTFB_PROBE_FD=str(w), TTFB_PROBE_ID="%d:%d" % (st.st_dev, st.st_ino))
    t0 = time.monotonic()
    proc = subprocess.Popen(command, cwd=workdir, env=env, pass_fds=(w,), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    os.close(w)
    marks, buf, ttfb = [], b"", None
    deadline = t0 + timeout
    try:
        while ttfb is None and time.monotonic() < deadline:
            chunk = os.read(r, 4096)
            now = time.monotonic()
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                text = line.decode("ascii")
                if text.startswith("phase "):
                    marks.append((text[6:], now))
                elif text == "first_batch":
                    ttfb = now
                    break
    finally:
        os.close(r)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    if ttfb is None:
        raise SystemExit("no first_batch from %s (exit status %s)" % (workdir, proc.returncode))
    phases = {}
    for (name, start), (_, end) in zip(marks, marks[1:] + [(None, ttfb)]):
        phases[name] = (end - start) * 1000.0
    return (ttfb - t0) * 1000.0, phases


def prepare(arm, scratch):
    """Return the directory to run `arm` in, exporting and building REPO@REV[+DIFF] arms."""
    if "@" not in arm:
        return arm
    repo, rev = arm.rsplit("@", 1)
    rev, _, diff = rev.partition("+")
    out = tempfile.mkdtemp(dir=scratch)
    archive = subprocess.run(["git", "-C", repo, "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", out], input=archive, check=True)
    if diff:
        subprocess.run(["git", "apply", os.path.abspath(diff)], cwd=out, check=True)
    subprocess.run(["python3", "-m", "compileall", "-q", "."], cwd=out, env=ENV, check=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20, help="measured runs per arm")
    ap.add_argument("--warmup", type=int, default=1, help="warm-up runs per arm (not reported)")
    ap.add_argument("arms", nargs="+")
    args = ap.parse_args()
    scratch = tempfile.mkdtemp(prefix="measure-ttfb.")
    try:
        dirs = {arm: prepare(arm, scratch) for arm in args.arms}
        return measure(args, dirs)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def measure(args, dirs):
    command = ["python3", "train.py"] + SHRINK_ARGS
    arms = list(dirs)
    samples = {d: [] for d in arms}
    phases = {d: {} for d in arms}
    for _ in range(args.warmup):
        for d in arms:
            run_once(dirs[d], command)
    for i in range(args.runs):
        order = arms if i % 2 == 0 else list(reversed(arms))
        for d in order:
            ttfb, ph = run_once(dirs[d], command)
            samples[d].append(ttfb)
            for name, ms in ph.items():
                phases[d].setdefault(name, []).append(ms)
    base = statistics.median(samples[arms[0]])
    for d in arms:
        xs = samples[d]
        med = statistics.median(xs)
        cv = statistics.stdev(xs) / statistics.mean(xs) * 100.0
        ph = "  ".join("%s %.1f" % (n, statistics.median(v)) for n, v in phases[d].items())
        delta = "" if d == arms[0] else "  (%+.1f%% vs first)" % ((med / base - 1.0) * 100.0)
        print("%-48s median %6.1f ms  cv %4.1f%%  n=%d%s\n    phases (median ms): %s" % (d, med, cv, len(xs), delta, ph))
    return 0


if __name__ == "__main__":
    sys.exit(main())
