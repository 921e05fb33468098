"""Functional test of the sandbox against a hostile diff (issue 13): the real server, a real
worker, PostgreSQL and a diff whose code, when the worker runs it, attacks everything a workload
could reach without a sandbox. Every attack must fail; the worker and the server carry on and
complete the next, normal experiment.

The attack code reports each attempt on stderr ("ATTACK name: blocked (...)" or "ATTACK name:
SUCCEEDED (...)") and exits with status 3, so the job fails with workload_failed and the report
comes back in the failure's details. What the test also checks from outside: the worker process
is alive, the daemon the workload left is gone, PostgreSQL has no table the workload tried to
create, and the host's /tmp did not fill.
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ADMIN_DSN, Lab, psql  # noqa: E402

ATTACKS = ["pg_socket", "pg_tcp", "server_api", "host_port", "other_worktree", "worker_cache", "token_file",
           "token_env", "tmp_flood", "home_flood", "fork_bomb", "kill_worker", "kill_all", "daemon"]

# Runs at `import attack` in train.py, before anything of the trainer. Parameters come as
# constants the test writes in (what an attacker could learn or guess: paths, ports, pids).
ATTACK_PY = r'''
import errno, os, signal, socket, sys, time, urllib.request

P = PARAMS

def report(name, ok, detail):
    print("ATTACK %s: %s (%s)" % (name, "SUCCEEDED" if ok else "blocked", str(detail)[:120]), file=sys.stderr, flush=True)

def attempt(name, fn):
    try:
        report(name, True, fn())
    except Exception as e:  # what stops an attack is an error: say which
        report(name, False, "%s: %s" % (type(e).__name__, e))

def unix_connect(path):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(2)
    s.connect(path)
    return "connected to " + path

def tcp_connect(port):
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
    return "connected to 127.0.0.1:%d" % port

def read(path):
    if os.path.isdir(path):
        return "listed %s: %s" % (path, os.listdir(path)[:5])
    with open(path) as f:
        return "read %s: %s" % (path, f.read(40))

def token_env():
    leaked = [k for k, v in os.environ.items() if P["token"] in v or "TOKEN" in k]
    if leaked:
        return "environment has " + ",".join(leaked)
    raise PermissionError("no token in the environment")

def flood(directory):
    total, chunk = 0, b"x" * (16 << 20)
    with open(os.path.join(directory, "flood"), "wb") as f:
        while total < (8 << 30):
            try:
                f.write(chunk)
                f.flush()
            except OSError as e:
                if e.errno == errno.ENOSPC:
                    raise OSError(errno.ENOSPC, "full after %d MB" % (total >> 20))
                raise
            total += len(chunk)
    return "wrote %d MB" % (total >> 20)

def fork_bomb():
    pid = os.fork()
    if pid == 0:
        os.setpgid(0, 0)
        n = 0
        try:
            while n < 100000:
                if os.fork() == 0:
                    time.sleep(600)
                    os._exit(0)
                n += 1
        except OSError as e:
            os.write(w, b"%d %d" % (n, e.errno))
        else:
            os.write(w, b"%d 0" % n)
        os._exit(0)
    forked, err = os.read(r, 100).split()
    os.killpg(pid, signal.SIGKILL)
    if int(err) == 0:
        return "forked %s processes" % forked.decode()
    raise OSError(int(err), "stopped after %s forks: %s" % (forked.decode(), os.strerror(int(err))))

def kill_worker():
    os.kill(P["worker_pid"], signal.SIGKILL)
    return "killed pid %d" % P["worker_pid"]

def kill_all():
    os.kill(-1, signal.SIGKILL)  # every process we may signal but ourselves
    time.sleep(0.2)
    os.kill(P["worker_pid"], 0)
    return "worker pid %d still visible after kill -9 -1" % P["worker_pid"]

def daemon():
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            os.execvp("sleep", ["sleep", P["marker"]])
        os._exit(0)
    time.sleep(0.3)
    raise RuntimeError("left daemon `sleep %s`: the test checks it is gone after the run" % P["marker"])

r, w = os.pipe()
attempt("pg_socket", lambda: unix_connect(P["pg_socket"]))
attempt("pg_tcp", lambda: tcp_connect(P["pg_port"]))
attempt("server_api", lambda: urllib.request.urlopen(P["server_url"] + "/api/v1/workers", timeout=2).read()[:40])
attempt("host_port", lambda: tcp_connect(P["host_port"]))
attempt("other_worktree", lambda: read(P["other_worktree"]))
attempt("worker_cache", lambda: read(P["worker_cache"]))
attempt("token_file", lambda: read(P["token_file"]))
attempt("token_env", token_env)
attempt("tmp_flood", lambda: flood("/tmp"))
attempt("home_flood", lambda: flood(os.environ["HOME"]))
attempt("fork_bomb", fork_bomb)
attempt("kill_worker", kill_worker)
attempt("kill_all", kill_all)
attempt("daemon", daemon)  # after kill_all: only the end of the sandbox can take it down
sys.exit(3)
'''


def pg_target(dsn):
    """(socket path, port) of the lab's PostgreSQL, from its admin DSN."""
    host = re.search(r"host=(\S+)", dsn)
    port = re.search(r"port=(\d+)", dsn)
    port = int(port.group(1)) if port else 5432
    host = host.group(1).strip("'") if host else "/var/run/postgresql"
    return os.path.join(host, f".s.PGSQL.{port}"), port


def host_offers_cgroup(controller):
    """A v1 hierarchy with the controller, or a v2 root offering it (read from /proc/mounts)."""
    with open("/proc/mounts") as f:
        for line in f:
            _, point, kind, options = line.split()[:4]
            if kind == "cgroup" and controller in options.split(","):
                return True
            if kind == "cgroup2":
                try:
                    with open(os.path.join(point, "cgroup.controllers")) as c:
                        if controller in c.read().split():
                            return True
                except OSError:
                    pass
    return False


def hostile_diff(lab, params):
    """A diff of the example repository's main: attack.py, imported first thing by train.py."""
    work = tempfile.mkdtemp(prefix="ttfb-hostile-")
    try:
        subprocess.run(["git", "clone", "-q", lab.repo, work], check=True, capture_output=True)
        with open(os.path.join(work, "attack.py"), "w") as f:
            f.write(ATTACK_PY.replace("PARAMS", repr(params)))
        with open(os.path.join(work, "train.py")) as f:
            text = f.read()
        with open(os.path.join(work, "train.py"), "w") as f:
            f.write("import attack  # noqa: F401\n" + text)
        subprocess.run(["git", "add", "-A"], cwd=work, check=True)
        return subprocess.run(["git", "diff", "--cached"], cwd=work, check=True, capture_output=True, text=True).stdout
    finally:
        shutil.rmtree(work, ignore_errors=True)


def live_pids_with_arg(arg):
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if arg.encode() in args and state != "Z":
            out.append(int(pid))
    return out


class HostileWorkload(unittest.TestCase):
    def test_every_attack_fails_and_the_lab_carries_on(self):
        with Lab(workers=1) as lab:
            # A normal experiment first: the worker has a cache, worktrees and mirrors to steal.
            first = lab.wait_experiment(lab.submit("neutral.diff", runs=4), timeout=300)
            self.assertEqual(first["status"], "done", first)
            cache = os.path.join(lab.tmp, "workers", "w1")
            worktrees = os.path.join(cache, "worktrees")
            other = next(os.path.join(root, d) for root, dirs, _ in os.walk(worktrees) for d in dirs)
            # A token file as ./lab keeps one (0600), holding the real worker token.
            token_file = os.path.join(lab.tmp, "worker-token")
            with open(token_file, "w") as f:
                f.write(lab.worker_token + "\n")
            os.chmod(token_file, 0o600)
            # Another service on the host's loopback.
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            pg_socket, pg_port = pg_target(ADMIN_DSN)
            marker = "%d.%d" % (4000 + os.getpid() % 1000, 7)
            worker = lab.workers["w1"]
            params = {"pg_socket": pg_socket, "pg_port": pg_port, "server_url": lab.url,
                      "host_port": listener.getsockname()[1], "other_worktree": other, "worker_cache": cache,
                      "token_file": token_file, "token": lab.worker_token, "worker_pid": worker.pid,
                      "marker": marker}
            tmp_before = shutil.disk_usage("/tmp").free

            exp = lab.submit(diff=hostile_diff(lab, params), runs=4)
            e = lab.wait_experiment(exp, timeout=300)
            listener.close()

            self.assertEqual(e["status"], "error", e)
            err = e["error"]
            self.assertEqual(err["code"], "workload_failed", err)
            report = err.get("message", "") + "\n" + err.get("details", "")
            for name in ATTACKS:
                self.assertRegex(report, rf"ATTACK {name}: blocked", f"attack {name} was not reported blocked:\n{report}")
            self.assertNotIn("SUCCEEDED", report, report)
            # Bounded floods: /tmp stopped at its tmpfs size, and the host's /tmp did not take it.
            self.assertRegex(report, r"ATTACK tmp_flood: blocked \(OSError: \[Errno 28\] full after \d+ MB")
            self.assertGreater(shutil.disk_usage("/tmp").free, tmp_before - (512 << 20))
            self.assertRegex(report, r"ATTACK fork_bomb: blocked \((BlockingIO|OS)Error: \[Errno 11\]")
            # Where the host offers cgroups to a root worker, the run had its own: the worker says so
            # at start, and the fork bomb met the run's pids.max (the failure message counts it).
            if os.geteuid() == 0 and host_offers_cgroup("pids"):
                with open(os.path.join(lab.tmp, "worker-w1.log"), errors="replace") as f:
                    started = f.read()
                self.assertRegex(started, r"cgroups: .*pids \(cgroup v[12]\)", started[-2000:])
                self.assertRegex(err.get("message", ""), r"\d+ forks were refused at its limit of \d+ processes", err)

            # From outside: the worker lives, the daemon is gone, PostgreSQL was not touched.
            self.assertIsNone(worker.poll(), "the worker died:\n" + lab.log("worker-w1", 40))
            self.assertEqual(live_pids_with_arg(marker), [], "the workload's daemon outlived its job")
            psql(ADMIN_DSN, "SELECT 1")  # still up

            # The lab carries on: the same worker runs the next experiment to its verdict.
            after = lab.wait_experiment(lab.submit("neutral.diff", runs=4), timeout=300)
            self.assertEqual(after["status"], "done", after)
            self.assertIsNone(worker.poll(), "the worker must still be running")


if __name__ == "__main__":
    unittest.main()
