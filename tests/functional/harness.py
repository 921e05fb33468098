"""A throwaway ttfb-lab for functional tests: the real server and workers on a fresh PostgreSQL
database, with a fresh copy of the example training repository.

    with Lab(workers=2) as lab:
        status, body = lab.api("POST", "/api/v1/experiments", {...}, token=lab.submit_token)

Needs TTFB_LAB_BUILD_DIR, TTFB_LAB_SOURCE_DIR and TTFB_LAB_TEST_PG_ADMIN_DSN (./lab test sets
them). Everything it starts is stopped and its database dropped on exit.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

BUILD = os.environ.get("TTFB_LAB_BUILD_DIR", "")
SOURCE = os.environ.get("TTFB_LAB_SOURCE_DIR", "")
ADMIN_DSN = os.environ.get("TTFB_LAB_TEST_PG_ADMIN_DSN", "")

SERVER_BIN = os.path.join(BUILD, "server", "ttfb-lab-server")
WORKER_BIN = os.path.join(BUILD, "worker", "ttfb-lab-worker")
CLI_BIN = os.path.join(BUILD, "cli", "ttfb-lab")

# The example trainer with a short timeout, for the hanging-workload test: a lab has it only when
# asked (extra_workflows=SHORT_TIMEOUT), so that the labs whose tests measure every workflow of the
# repository (the CI examples, a release gate) do not spend their time on it.
FAST_TIMEOUT_WORKFLOW = """
name = "example-train-short-timeout"
repo = "example"
description = "The example trainer with a 3 s timeout, for the hanging-workload test"
command = ["python3", "train.py"]
probe = "fd"
timeout_seconds = 3
warmup_runs = 0
[policy]
runs_per_block = 4
max_runs_per_arm = 8
[shrink]
args = ["--steps", "1", "--device", "cpu", "--tiny"]
"""
SHORT_TIMEOUT = {"example-train-short-timeout.toml": FAST_TIMEOUT_WORKFLOW}


def example_workflow_variant(name, source="example-train", **policy):
    """configs/workflows/<source>.toml under another name (or its own), with the given keys of its
    [policy] table (its last table) set: for a test that needs the example trainer with a policy
    of its own while the others keep the workflow as configured."""
    with open(os.path.join(SOURCE, "configs", "workflows", f"{source}.toml")) as f:
        text = f.read()
    text = text.replace(f'name = "{source}"', f'name = "{name}"', 1)
    head, sep, table = text.partition("\n[policy]\n")
    if f'name = "{name}"' not in text or not sep or "\n[" in table:
        raise RuntimeError("example-train.toml no longer has its name first and [policy] as its last table")
    for key, value in policy.items():
        line = f"{key} = {json.dumps(value)}"
        table, n = re.subn(rf"(?m)^{re.escape(key)}\s*=.*$", line, table)
        if n == 0:
            table = table.rstrip("\n") + "\n" + line + "\n"
    return head + sep + table


def pg_ctl(*args):
    """Runs pg_ctl on the test cluster (as postgres when we are root, as ./lab does)."""
    data = os.environ.get("TTFB_LAB_TEST_PG_DATA")
    pg_bin = os.environ.get("TTFB_LAB_TEST_PG_BIN", "/usr/lib/postgresql/15/bin")
    if not data:
        raise RuntimeError("TTFB_LAB_TEST_PG_DATA is not set: run the functional tests through ./lab test")
    cmd = [os.path.join(pg_bin, "pg_ctl"), "-D", data, *args]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60, cwd="/")  # a folder postgres may enter


def free_port():
    """A TCP port nothing listens on right now (for a service the test starts later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(dsn, sql):
    # -w: never prompt (the lab's cluster takes its password from the passfile the DSN names).
    subprocess.run(["psql", dsn, "-wX", "-v", "ON_ERROR_STOP=1", "-qAtc", sql], check=True, capture_output=True, text=True)


def with_dbname(dsn, dbname):
    """The DSN (keyword form) with another database and every other setting kept: host, port,
    user and the passfile that holds the lab's database password."""
    rest = re.sub(r"(^|\s)dbname\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", " ", dsn).strip()
    return f"{rest} dbname={dbname}".strip()


# Every lab's confirmation reruns are capped at 40 runs per arm instead of the default 120, unless
# a test sets the cap itself. A rerun is sized for 90% power at the first look's interval end
# nearer 0, which after one block of 10 runs is a few percent: 120 runs per arm for effects of
# +20% and more (the tests' regressions), which 40 reproduce with power above 99%, and for a
# slowdown that does not reproduce, which no number of runs makes reproduce. On a slow VM the
# difference was minutes per rerun (test_hook: 7 minutes; test_adaptive: about 3).
RERUN_CAP = "max_rerun_runs_per_arm = 40"


def with_rerun_cap(extra_config):
    if "max_rerun_runs_per_arm" in extra_config:
        return extra_config
    if "[defaults.policy]\n" in extra_config:
        return extra_config.replace("[defaults.policy]\n", "[defaults.policy]\n" + RERUN_CAP + "\n", 1)
    return extra_config + "\n[defaults.policy]\n" + RERUN_CAP + "\n"


class Lab:
    def __init__(self, workers=2, lease_seconds=30, extra_config="", extra_workflows=None):
        for name, value in (("TTFB_LAB_BUILD_DIR", BUILD), ("TTFB_LAB_SOURCE_DIR", SOURCE),
                            ("TTFB_LAB_TEST_PG_ADMIN_DSN", ADMIN_DSN)):
            if not value:
                raise RuntimeError(f"{name} is not set: run the functional tests through ./lab test")
        self.n_workers = workers
        self.lease_seconds = lease_seconds
        self.extra_config = extra_config  # appended to server.toml ({tmp} is replaced by the lab's directory)
        self.extra_workflows = extra_workflows or {}  # file name -> TOML, beside configs/workflows/
        self.procs = {}
        self.workers = {}

    # ---- set-up and tear-down ---------------------------------------------------------------
    def __enter__(self):
        self.tmp = tempfile.mkdtemp(prefix="ttfb-functional-")
        os.chmod(self.tmp, 0o755)  # workloads may run as an unprivileged user
        self.db = "ttfb_ft_%d_%d" % (os.getpid(), int(time.time() * 1000) % 100000)
        psql(ADMIN_DSN, f"CREATE DATABASE {self.db}")
        self.dsn = with_dbname(ADMIN_DSN, self.db)
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self):
        self.repo = os.path.join(self.tmp, "repos", "example-trainer")
        subprocess.run([os.path.join(SOURCE, "examples", "build-example-repo.sh"), self.repo], check=True,
                       capture_output=True)
        wf_dir = os.path.join(self.tmp, "workflows")
        shutil.copytree(os.path.join(SOURCE, "configs", "workflows"), wf_dir)
        for name, text in self.extra_workflows.items():
            with open(os.path.join(wf_dir, name), "w") as f:
                f.write(text)
        self.config = os.path.join(self.tmp, "server.toml")
        with open(self.config, "w") as f:
            f.write(f"""
[server]
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1:0"
body_limit_bytes = 1048576
open_reads = true
[database]
dsn = {json.dumps(self.dsn)}
[scheduler]
lease_seconds = {self.lease_seconds}
max_attempts = 3
tick_ms = 200
worker_alive_seconds = 30
[git]
cache_dir = "{self.tmp}/server-git"
[workflows]
dir = "{wf_dir}"
[repos.example]
url = "{self.repo}"
default_branch = "main"
""" + with_rerun_cap(self.extra_config).replace("{tmp}", self.tmp))
        self.submit_token = self._token("tester", "submit")
        # One token per worker, named like it: the server takes a worker's identity from its token.
        self.worker_tokens = {}
        self.worker_token = self.token_of_worker("w1")
        self.admin_token = self._token("test-admin", "admin")
        self.start_server()
        for i in range(1, self.n_workers + 1):
            self.start_worker(f"w{i}")

    def token_of_worker(self, name):
        """The worker token named `name` (made on first use)."""
        if name not in self.worker_tokens:
            self.worker_tokens[name] = self._token(name, "worker")
        return self.worker_tokens[name]

    def _token(self, name, scopes):
        out = subprocess.run([SERVER_BIN, "--config", self.config, "--name", name, "--scopes", scopes, "token", "create"],
                             check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def start_server(self):
        if getattr(self, "url", None):
            # A restart listens where the workers and the tests already talk to.
            port = self.url.rsplit(":", 1)[1]
            with open(self.config) as f:
                text = f.read()
            with open(self.config, "w") as f:
                f.write(re.sub(r'listen = "127\.0\.0\.1:\d+"', f'listen = "127.0.0.1:{port}"', text))
        with open(os.path.join(self.tmp, "server.log"), "ab") as log:
            p = subprocess.Popen([SERVER_BIN, "--config", self.config], stdout=subprocess.PIPE, stderr=log)
        self.procs["server"] = p
        deadline = time.time() + 60
        line = b""
        while time.time() < deadline:
            line = p.stdout.readline()
            if not line:
                raise RuntimeError("the server exited before listening: " + self.log("server"))
            m = re.search(rb"listening on (http://\S+)", line)
            if m:
                self.url = m.group(1).decode()
                break
        else:
            raise RuntimeError("the server did not start listening")
        self.wait_until(lambda: self.api("GET", "/readyz")[0] == 200, 30, "the server to be ready")

    def stop_server(self, sig=signal.SIGTERM):
        p = self.procs.pop("server", None)
        if p:
            p.send_signal(sig)
            p.wait(timeout=30)

    def start_worker(self, name, run_as=None):
        """Starts worker `name` with its own token; `run_as`: the user its workloads run as
        (root only; the worker's default is nobody)."""
        cache = os.path.join(self.tmp, "workers", name)
        os.makedirs(cache, exist_ok=True)
        os.chmod(cache, 0o755)
        env = dict(os.environ, TTFB_LAB_WORKER_TOKEN=self.token_of_worker(name))
        extra = ["--run-as-user", run_as] if run_as else []
        with open(os.path.join(self.tmp, f"worker-{name}.log"), "ab") as log:
            p = subprocess.Popen([WORKER_BIN, "--server", self.url, "--name", name, "--cache-dir", cache,
                                  "--poll-interval-ms", "200", *extra], stdout=log, stderr=log, env=env)
        self.workers[name] = p
        return p

    def start_sink(self, name="sink", http_port=0, smtp_port=0, delay=0.0, fail_first=0):
        """Starts scripts/alert_sink.py; returns (http_port, smtp_port). What it receives is
        in self.received(name)."""
        out = os.path.join(self.tmp, f"{name}.jsonl")
        args = ["python3", os.path.join(SOURCE, "scripts", "alert_sink.py"), "--out", out,
                "--http-port", str(http_port), "--smtp-port", str(smtp_port), "--delay", str(delay),
                "--fail-first", str(fail_first)]
        with open(os.path.join(self.tmp, f"{name}.log"), "ab") as log:
            p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log)
        self.procs[name] = p
        ports = json.loads(p.stdout.readline())
        return ports["http_port"], ports["smtp_port"]

    def received(self, name="sink"):
        """The sink's records so far (one dict per webhook request or e-mail)."""
        try:
            with open(os.path.join(self.tmp, f"{name}.jsonl")) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def git(self, *args, cwd=None):
        out = subprocess.run(["git", *args], cwd=cwd or self.repo, check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def kill_worker(self, name, sig=signal.SIGKILL):
        p = self.workers.pop(name)
        p.send_signal(sig)
        p.wait(timeout=30)

    def __exit__(self, *exc):
        for p in list(self.workers.values()) + list(self.procs.values()):
            if p.poll() is None:
                p.terminate()
        for p in list(self.workers.values()) + list(self.procs.values()):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
            if p.stdout:
                p.stdout.close()
        failed = exc and exc[0] is not None
        if failed or os.environ.get("TTFB_LAB_KEEP_LOGS"):
            for name in sorted(os.listdir(self.tmp)):
                if name.endswith(".log"):
                    sys.stderr.write(f"\n----- {name} (last 40 lines) -----\n{self.log(name[:-4], 40)}\n")
        self._print_costs()
        try:
            psql(ADMIN_DSN, f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.tmp, ignore_errors=True)
        return False

    def _print_costs(self):
        """What each experiment cost, to stderr (ctest keeps it in Testing/Temporary/LastTest.log):
        where a functional test's minutes go."""
        sql = """
SELECT e.id, e.purpose, coalesce(e.verdict, e.status),
       (SELECT string_agg(w.workflow || '=' || coalesce(w.verdict, '-') || coalesce(
                 (SELECT '[' || string_agg(st.stage || ':' || st.jobs || 'j/' || st.runs || 'r', ',') || ']'
                    FROM (SELECT j.stage, count(DISTINCT j.id) AS jobs,
                                 count(s.id) FILTER (WHERE NOT s.warmup) AS runs
                            FROM jobs j LEFT JOIN samples s ON s.job_id = j.id
                           WHERE j.experiment_id = e.id AND j.workflow = w.workflow GROUP BY j.stage) st), ''),
                 ' ') FROM experiment_workflows w WHERE w.experiment_id = e.id),
       (SELECT count(*) FROM jobs j WHERE j.experiment_id = e.id),
       (SELECT count(*) FROM samples s WHERE s.experiment_id = e.id AND NOT s.warmup),
       (SELECT count(*) FROM samples s WHERE s.experiment_id = e.id AND s.warmup),
       round(extract(epoch FROM coalesce(e.finished_at, now()) - e.created_at)::numeric, 1),
       round(coalesce((SELECT sum(extract(epoch FROM j.finished_at - j.started_at)) FROM jobs j
         WHERE j.experiment_id = e.id AND j.finished_at IS NOT NULL), 0)::numeric, 1)
  FROM experiments e ORDER BY e.id"""
        try:
            out = subprocess.run(["psql", self.dsn, "-wX", "-qAt", "-F", "\t", "-c", sql], capture_output=True,
                                 text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return
        rows = [r.split("\t") for r in out.stdout.splitlines() if r]
        if not rows:
            return
        sys.stderr.write("\n----- experiments: id purpose verdict workflows jobs runs warmups wall_s job_s -----\n")
        for r in rows:
            sys.stderr.write("  " + "  ".join(r) + "\n")
        sys.stderr.write(f"  total: {sum(int(r[5]) for r in rows)} runs, {sum(float(r[8]) for r in rows):.0f} s in jobs\n")

    def log(self, name, lines=20):
        try:
            with open(os.path.join(self.tmp, f"{name}.log"), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no log)"

    # ---- talking to it ------------------------------------------------------------------------
    def api(self, method, path, body=None, token=None, raw=None, headers=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", "Bearer " + token)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                text = r.read().decode()
                return r.status, (json.loads(text) if text and r.headers.get("Content-Type", "").startswith("application/json") else text)
        except urllib.error.HTTPError as e:
            text = e.read().decode()
            try:
                return e.code, json.loads(text)
            except ValueError:
                return e.code, text

    def submit(self, diff_file=None, diff=None, workflows=("example-train",), runs=None, **extra):
        body = {"repo": "example", "base": "main", "workflows": list(workflows)}
        if diff_file:
            with open(os.path.join(SOURCE, "examples", "diffs", diff_file)) as f:
                body["diff"] = f.read()
        if diff is not None:
            body["diff"] = diff
        if runs:
            body["runs_per_arm"] = runs
        body.update(extra)
        status, out = self.api("POST", "/api/v1/experiments", body, token=self.submit_token)
        if status != 201:
            raise AssertionError(f"submission failed: {status} {out}")
        return out["id"]

    def count_experiments(self):
        """Rows in the experiments table, read from the database itself (what a refusal must not add)."""
        out = subprocess.run(["psql", self.dsn, "-wX", "-qAtc", "SELECT count(*) FROM experiments"],
                             check=True, capture_output=True, text=True).stdout
        return int(out.strip())

    def wait_experiment(self, exp_id, timeout=300):
        def done():
            status, e = self.api("GET", f"/api/v1/experiments/{exp_id}")
            return e if status == 200 and e["status"] in ("done", "error", "cancelled") else None
        return self.wait_until(done, timeout, f"experiment {exp_id} to finish")

    def wait_until(self, fn, timeout, what):
        deadline = time.time() + timeout
        while time.time() < deadline:
            v = fn()
            if v:
                return v
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}\nserver log:\n{self.log('server')}")

    def cli(self, *args, input=None, token=None):
        env = dict(os.environ, TTFB_LAB_SERVER=self.url, TTFB_LAB_TOKEN=token or self.submit_token)
        return subprocess.run([CLI_BIN, *args], capture_output=True, text=True, env=env, input=input, timeout=600)
