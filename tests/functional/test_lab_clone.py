"""`./lab up` from a fresh clone in a private folder: a `git clone` of the committed HEAD of the
source tree into a new `mktemp -d` folder (mode 0700, which PostgreSQL's user and the workloads'
user cannot enter), with ports of its own and this build reused as it is (TTFB_LAB_BUILD_DIR,
TTFB_LAB_NO_BUILD=1: no second 10-minute build, and no rebuild of the tree ctest runs from). Then:

- `./lab up` with its default fleet (one worker per CPU beside the first, at least one): the
  server becomes ready and `./lab status` says where the state lives (as root: the cluster and
  the workers' caches in a state directory outside the folder, /var/lib/ttfb-lab/...);
- with 2 or more usable CPUs, the services on the first: the server, the postmaster (and all its
  processes) and the alert sink may run on that CPU only, worker i on the i-th of the others only,
  with `--cpus` of it on its command line, and no worker on the services' CPU; `./lab status`
  shows each one's CPUs;
- a worker, with a token of its own named lab-worker-1, claims and completes a small experiment
  (`ttfb-lab submit --wait` of examples/diffs/neutral.diff, 4 runs per arm);
- the files are the lab user's alone: .lab/env, the passfile, the worker's token, logs and pid
  files 0600, their folders 0700; the cluster's folder and socket directory 0700 (postgres's);
- the workload user cannot connect to that cluster either;
- `./lab up --workers C` on C usable CPUs (more workers than CPUs beside the services'): the
  workers are restarted unpinned, with no `--cpus`, the services moved back to every CPU, and
  `up` says the workers share cores;
- `./lab down` there stops everything `up` started (each pid gone, the cluster stopped);
- `./lab clean` removes .lab/ and the state directory and nothing else, and refuses a state
  directory that is not this checkout's.

The clone, and its state directory, are removed afterwards.
"""
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, CLI_BIN, SOURCE, free_port  # noqa: E402

WORKLOAD_USER = "nobody"


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def cpu_list(text):
    """The kernel's list format ("0-2,4") as a set of CPUs."""
    cpus = set()
    for part in text.strip().split(","):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def cpus_allowed(pid):
    with open(f"/proc/{pid}/status") as f:
        return cpu_list(re.search(r"^Cpus_allowed_list:\s*(\S+)", f.read(), re.M).group(1))


def cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]


def children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return out


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is gone for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class CloneInPrivateFolder(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for name, value in (("TTFB_LAB_BUILD_DIR", BUILD), ("TTFB_LAB_SOURCE_DIR", SOURCE)):
            if not value:
                raise RuntimeError(f"{name} is not set: run the functional tests through ./lab test")
        cls.tmp = tempfile.mkdtemp(prefix="ttfb-clone-")  # mode 0700
        cls.clone = os.path.join(cls.tmp, "ttfb-lab")
        cls.state_dir = None
        head = subprocess.run(["git", "-C", SOURCE, "rev-parse", "HEAD"], check=True, capture_output=True,
                              text=True).stdout.strip()
        subprocess.run(["git", "clone", "--quiet", SOURCE, cls.clone], check=True, capture_output=True)
        subprocess.run(["git", "-C", cls.clone, "checkout", "--quiet", "--detach", head], check=True,
                       capture_output=True)
        # The lab of `./lab test` must not leak in: no TTFB_LAB_* but the build and fresh ports.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TTFB_LAB_", "PG"))}
        # This build, as it is: rebuilding the tree ctest runs from would be slow, or worse.
        env.update(TTFB_LAB_BUILD_DIR=BUILD, TTFB_LAB_NO_BUILD="1", TTFB_LAB_PG_PORT=str(free_port()), TTFB_LAB_PORT=str(free_port()),
                   TTFB_LAB_SINK_PORT=str(free_port()), TTFB_LAB_SINK_SMTP_PORT=str(free_port()))
        cls.env = env
        cls.port = env["TTFB_LAB_PORT"]
        cls.lab_dir = os.path.join(cls.clone, ".lab")
        # The lab inherits our CPUs: the services get the first, the workers one each of the rest.
        cls.cpus = sorted(os.sched_getaffinity(0))
        cls.workers = max(1, len(cls.cpus) - 1)
        t0 = time.time()
        cls.up = cls.lab("up", timeout=900)
        cls.up_seconds = time.time() - t0
        cls.status = cls.lab("status").stdout
        m = re.search(r"the cluster and the workers' caches in (\S+)", cls.status)
        cls.state_dir = m.group(1) if m else None
        cls.read_pids()

    @classmethod
    def read_pids(cls):
        pids = []
        run = os.path.join(cls.lab_dir, "run")
        for name in sorted(os.listdir(run)) if os.path.isdir(run) else []:
            with open(os.path.join(run, name)) as f:
                pids.append((name, int(f.read().strip())))
        cls.pids = pids

    @classmethod
    def lab(cls, *args, timeout=300):
        return subprocess.run([os.path.join(cls.clone, "lab"), *args], cwd=cls.clone, env=cls.env,
                              capture_output=True, text=True, timeout=timeout)

    @classmethod
    def tearDownClass(cls):
        if os.path.exists(os.path.join(cls.clone, "lab")):
            cls.lab("down", timeout=120)
        for name, pid in getattr(cls, "pids", []):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if cls.state_dir and cls.state_dir.startswith("/var/lib/ttfb-lab/"):
            shutil.rmtree(cls.state_dir, ignore_errors=True)

    def assert_up(self):
        self.assertEqual(self.up.returncode, 0, "./lab up failed:\n" + self.up.stderr[-4000:])

    def pid(self, name):
        return dict(self.pids)[name]

    def test_1_up_in_a_private_folder(self):
        self.assertEqual(mode(self.tmp), 0o700)
        self.assert_up()
        print(f"./lab up ({self.workers} worker(s) on CPUs {self.cpus}) in {self.clone}: {self.up_seconds:.0f} s",
              file=sys.stderr)
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=10) as r:
            self.assertEqual(r.status, 200)
        self.assertIn("server      running", self.status)
        for i in range(1, self.workers + 1):
            self.assertIn(f"worker-{i}    running", self.status)
        self.assertNotIn(f"worker-{self.workers + 1} ", self.status)
        if os.geteuid() == 0:
            # Neither postgres nor nobody can enter the folder: what they need lives outside.
            self.assertIsNotNone(self.state_dir, "./lab status names no state directory:\n" + self.status)
            self.assertTrue(self.state_dir.startswith("/var/lib/ttfb-lab/"), self.state_dir)
            self.assertIn(f"data {self.state_dir}/pg/data", self.status)
            self.assertIn(f"cache {self.state_dir}/workers/1", self.status)

    def test_1b_services_on_the_first_cpu_each_worker_on_its_own(self):
        if len(self.cpus) < 2:
            self.skipTest(f"one usable CPU ({self.cpus}): ./lab up pins nothing")
        self.assert_up()
        service = self.cpus[0]
        m = re.search(r"postgresql  running   .*  data (\S+)", self.status)
        self.assertIsNotNone(m, self.status)
        with open(os.path.join(m.group(1), "postmaster.pid")) as f:
            postmaster = int(f.readline())
        pg = children(postmaster)
        self.assertTrue(pg, "the postmaster has no child processes")
        for what, pid in [("the server", self.pid("server.pid")), ("the alert sink", self.pid("alert-sink.pid")),
                          ("the postmaster", postmaster)] + [(f"postgres child {p}", p) for p in pg]:
            self.assertEqual(cpus_allowed(pid), {service}, f"{what} (pid {pid}) is not on the services' CPU")
        for i in range(1, self.workers + 1):
            pid, cpu = self.pid(f"worker-{i}.pid"), self.cpus[i]
            self.assertEqual(cpus_allowed(pid), {cpu}, f"lab-worker-{i}'s CPUs")
            self.assertNotIn(service, cpus_allowed(pid))
            args = cmdline(pid)
            self.assertIn("--cpus", args, args)
            self.assertEqual(args[args.index("--cpus") + 1], str(cpu), args)
            self.assertRegex(self.status, rf"worker-{i}    running   pid {pid} .* cpus {cpu}  \(runs --cpus {cpu}\)")
        self.assertRegex(self.status, rf"server      running .* cpus {service} ")
        self.assertIn(f"CPUs: PostgreSQL, the server and the alert sink on CPU {service}; lab-worker-1 on CPU {self.cpus[1]}",
                      self.up.stderr)
        self.assertNotIn("share cores", self.up.stderr)

    def test_2_a_worker_with_its_own_token_completes_an_experiment(self):
        self.assert_up()
        with open(os.path.join(self.lab_dir, "env")) as f:
            env_file = dict(re.findall(r"^export (\w+)=(.*)$", f.read(), re.M))
        env = dict(self.env, TTFB_LAB_SERVER=env_file["TTFB_LAB_SERVER"], TTFB_LAB_TOKEN=env_file["TTFB_LAB_TOKEN"])
        r = subprocess.run([CLI_BIN, "submit", "--repo", "example", "--base", "main", "--diff",
                            os.path.join(self.clone, "examples", "diffs", "neutral.diff"), "--workflow",
                            "example-train", "--runs", "4", "--wait", "--json"],
                           capture_output=True, text=True, env=env, timeout=600)
        if r.returncode not in (0, 3):
            with open(os.path.join(self.lab_dir, "logs", "worker-1.log"), errors="replace") as f:
                self.fail(f"submit --wait: exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}\n"
                          f"worker log:\n{f.read()[-3000:]}")
        self.assertRegex(r.stdout, r'"status":\s*"done"')
        exp_id = re.search(r'"id":\s*(\d+)', r.stdout).group(1)
        req = urllib.request.Request(f"{env['TTFB_LAB_SERVER']}/api/v1/experiments/{exp_id}/samples",
                                     headers={"Authorization": "Bearer " + env["TTFB_LAB_TOKEN"]})
        with urllib.request.urlopen(req, timeout=30) as resp:
            samples = json.loads(resp.read())["samples"]
        self.assertGreaterEqual(len(samples), 8, samples)
        names = [f"lab-worker-{i}" for i in range(1, self.workers + 1)]
        self.assertLessEqual({s["worker"] for s in samples}, set(names), "the samples' worker")
        if self.workers == 1:
            self.assertEqual({s["worker"] for s in samples}, {"lab-worker-1"}, "the samples' worker")
        tokens = os.listdir(os.path.join(self.lab_dir, "worker-tokens"))
        self.assertEqual(sorted(tokens), sorted(names))
        self.assertFalse(os.path.exists(os.path.join(self.lab_dir, "worker-token")), "the shared token is gone")

    def test_3_files_are_the_lab_users_alone(self):
        self.assert_up()
        lab = self.lab_dir
        self.assertIn(mode(lab), (0o700, 0o711), lab)
        for d in ("logs", "run", "worker-tokens", "repos"):
            self.assertEqual(mode(os.path.join(lab, d)), 0o700, d)
        files = [os.path.join(lab, "env"), os.path.join(lab, "pgpass")]
        for d in ("logs", "run", "worker-tokens"):
            files += [os.path.join(lab, d, n) for n in os.listdir(os.path.join(lab, d))]
        self.assertTrue(any(f.endswith("server.pid") for f in files) and any(f.endswith("server.log") for f in files))
        for f in files:
            self.assertEqual(mode(f), 0o600, f)
            self.assertEqual(os.stat(f).st_uid, os.geteuid(), f)
        m = re.search(r"postgresql  running   (.*)  data (\S+)", self.status)
        self.assertIsNotNone(m, self.status)
        host = re.search(r"host=(\S+)", m.group(1)).group(1)
        self.assertEqual(mode(host), 0o700, "the socket directory")
        self.assertEqual(mode(os.path.dirname(m.group(2))), 0o700, "the cluster's folder")
        if os.geteuid() == 0:
            self.assertEqual(mode(self.state_dir), 0o711)
            r = subprocess.run(["runuser", "-u", WORKLOAD_USER, "--", "psql",
                                f"host={host} port={self.env['TTFB_LAB_PG_PORT']} user=postgres dbname=ttfb",
                                "-wXtAc", "SELECT 1"], capture_output=True, text=True, cwd="/", env={"PATH": os.environ["PATH"]})
            self.assertNotEqual(r.returncode, 0, f"{WORKLOAD_USER} reached the clone's database")
            self.assertIn("Permission denied", r.stderr)
            for f in files:
                r = subprocess.run(["runuser", "-u", WORKLOAD_USER, "--", "cat", f], capture_output=True, cwd="/")
                self.assertNotEqual(r.returncode, 0, f"{WORKLOAD_USER} read {f}")

    def test_3b_more_workers_than_cpus_run_unpinned_and_up_says_so(self):
        if len(self.cpus) < 2:
            self.skipTest(f"one usable CPU ({self.cpus}): ./lab up pins nothing")
        self.assert_up()
        n = len(self.cpus)  # one more than the CPUs beside the services' (2 on a 2-core machine)
        try:
            r = self.lab("up", "--workers", str(n), timeout=600)
        finally:
            type(self).read_pids()
        self.assertEqual(r.returncode, 0, r.stderr[-4000:])
        self.assertIn("the workers share cores", r.stderr)
        self.assertIn("restarting lab-worker-1", r.stderr)
        for i in range(1, n + 1):
            pid = self.pid(f"worker-{i}.pid")
            self.assertEqual(cpus_allowed(pid), set(self.cpus), f"lab-worker-{i} is pinned")
            self.assertNotIn("--cpus", cmdline(pid))
        for name in ("server.pid", "alert-sink.pid"):
            self.assertEqual(cpus_allowed(self.pid(name)), set(self.cpus), f"{name}: nothing is pinned then")
        self.assertIn("the server was already running", r.stderr)

    def test_4_down_stops_what_up_started(self):
        self.assert_up()
        names = [n for n, _ in self.pids]
        for want in ("alert-sink.pid", "server.pid", "worker-1.pid"):
            self.assertIn(want, names)
        r = self.lab("down", timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        for name, pid in self.pids:
            self.assertFalse(alive(pid), f"{name} ({pid}) still runs after ./lab down")
        status = self.lab("status").stdout
        self.assertIn("postgresql  stopped", status)
        self.assertIn("nothing is running", status)

    def test_5_clean_removes_this_checkouts_state_and_nothing_else(self):
        self.assert_up()
        if os.geteuid() == 0:
            # A state directory that is another lab's is refused, and left as it is.
            other = tempfile.mkdtemp(prefix="ttfb-other-state-")
            with open(os.path.join(other, "checkout"), "w") as f:
                f.write("/somewhere/else/.lab\n")
            r = subprocess.run([os.path.join(self.clone, "lab"), "clean"], cwd=self.clone, capture_output=True,
                               text=True, timeout=120, env=dict(self.env, TTFB_LAB_STATE_DIR=other))
            self.assertNotEqual(r.returncode, 0, r.stderr)
            self.assertIn("does not name", r.stderr)
            self.assertTrue(os.path.exists(os.path.join(other, "checkout")))
            shutil.rmtree(other)
        r = self.lab("clean", timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists(self.lab_dir), "./lab clean left .lab/")
        if self.state_dir:
            self.assertFalse(os.path.exists(self.state_dir), "./lab clean left " + self.state_dir)
        self.assertTrue(os.path.exists(os.path.join(self.clone, "README.md")), "the checkout itself stays")
        self.assertTrue(os.path.exists(os.path.join(BUILD, "CMakeCache.txt")), "the build stays")
        for name, pid in self.pids:
            self.assertFalse(alive(pid), f"{name} ({pid}) runs after ./lab clean")
        r = self.lab("clean", timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("no state to remove", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
