"""The lab's PostgreSQL (the one `./lab test` runs, named by TTFB_LAB_TEST_PG_ADMIN_DSN) is reachable
only by the lab's user, with the password from a passfile only that user can read:

- as the workload user (`nobody`, whom workers run diffs' code as when they run as root): no
  connection through the socket directory (private, 0700), none over TCP (127.0.0.1 and ::1: the
  cluster listens on no address), and the passfile cannot be read. Skipped, with the reason, when
  the tests do not run as root (there is then no other user to be);
- as the lab's user but without the password: refused with "no password supplied", and with a
  wrong one "password authentication failed" (the socket is reachable, and the cluster asks);
- every rule of pg_hba.conf is scram-sha-256, listen_addresses is empty;
- the passfile is 0600, the lab's directory, its logs/ and run/ are the lab user's alone, and
  every file in them is 0600.

The same checks on a lab started with `./lab up` in a private folder, with its tokens, are in
test_lab_clone.py.
"""
import os
import re
import stat
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ADMIN_DSN  # noqa: E402

WORKLOAD_USER = "nobody"


def parse_dsn(dsn):
    """A libpq keyword DSN as a dict (values may be quoted with '...' and backslash escapes)."""
    out = {}
    for m in re.finditer(r"(\w+)\s*=\s*('((?:[^'\\]|\\.)*)'|\S+)", dsn):
        out[m.group(1)] = re.sub(r"\\(.)", r"\1", m.group(3)) if m.group(3) is not None else m.group(2)
    return out


def quote(v):
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"


def dsn_of(**kw):
    return " ".join(f"{k}={quote(str(v))}" for k, v in kw.items())


def psql(dsn, sql="SELECT 1", user=None, env_extra=None):
    """psql as us, or as `user` (runuser); never prompts, reads no ~/.pgpass or psqlrc."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(PGPASSFILE="/dev/null", HOME="/", **(env_extra or {}))
    cmd = ["psql", dsn, "-wXqtAc", sql]
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd="/", timeout=60)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


class LockedDatabase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not ADMIN_DSN:
            raise RuntimeError("TTFB_LAB_TEST_PG_ADMIN_DSN is not set: run the functional tests through ./lab test")
        cls.dsn = parse_dsn(ADMIN_DSN)
        for k in ("host", "port", "passfile"):
            if k not in cls.dsn:
                raise AssertionError(f"the lab's admin DSN has no {k}=: {ADMIN_DSN}")
        cls.sock, cls.port, cls.passfile = cls.dsn["host"], cls.dsn["port"], cls.dsn["passfile"]
        cls.bare = dsn_of(host=cls.sock, port=cls.port, user="postgres", dbname="postgres")  # no password

    def test_the_lab_user_gets_in_with_the_passfile(self):
        r = psql(ADMIN_DSN, "SELECT current_user")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "postgres")

    def test_every_rule_asks_for_a_password_and_nothing_listens_on_tcp(self):
        r = psql(ADMIN_DSN, "SELECT type || ' ' || auth_method || coalesce(' ' || error, '') FROM pg_hba_file_rules")
        self.assertEqual(r.returncode, 0, r.stderr)
        rules = r.stdout.strip().split("\n")
        self.assertTrue(rules and rules[0], "pg_hba.conf has no rules")
        for rule in rules:
            self.assertRegex(rule, r"^(local|host) scram-sha-256$", f"pg_hba.conf: {rules}")
        r = psql(ADMIN_DSN, "SHOW listen_addresses")
        self.assertEqual((r.returncode, r.stdout.strip()), (0, ""), r.stderr)
        r = psql(ADMIN_DSN, "SHOW password_encryption")
        self.assertEqual(r.stdout.strip(), "scram-sha-256", r.stderr)

    def test_without_the_password_the_lab_user_is_refused(self):
        r = psql(self.bare)
        self.assertNotEqual(r.returncode, 0, "connected without a password: " + r.stdout)
        self.assertIn("no password supplied", r.stderr)
        r = psql(self.bare + " password=not-the-password")
        self.assertNotEqual(r.returncode, 0, "connected with a wrong password")
        self.assertIn("password authentication failed", r.stderr)

    def test_files_are_the_lab_users_alone(self):
        self.assertEqual(mode(self.passfile), 0o600, self.passfile)
        self.assertEqual(os.stat(self.passfile).st_uid, os.geteuid())
        # The socket directory belongs to the cluster's user (postgres when we are root) alone.
        st = os.stat(self.sock)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o700, self.sock)
        if os.geteuid() == 0:
            self.assertEqual(st.st_uid, int(subprocess.check_output(["id", "-u", "postgres"])))
        data = os.environ.get("TTFB_LAB_TEST_PG_DATA")
        if data:
            self.assertEqual(mode(os.path.dirname(os.path.abspath(data))), 0o700, "the cluster's folder")
        lab = os.environ.get("TTFB_LAB_DIR")
        if lab:
            # 0711 when PostgreSQL or the workers' caches live inside it (others may pass, not list).
            self.assertIn(mode(lab), (0o700, 0o711), lab)
            for sub in ("logs", "run", "worker-tokens", "repos"):
                path = os.path.join(lab, sub)
                if os.path.isdir(path):
                    self.assertEqual(mode(path), 0o700, path)
            for sub in ("logs", "run", "worker-tokens"):
                path = os.path.join(lab, sub)
                for name in os.listdir(path) if os.path.isdir(path) else []:
                    self.assertEqual(mode(os.path.join(path, name)), 0o600, os.path.join(path, name))
            for name in ("env", "pgpass", "alerts.jsonl"):
                path = os.path.join(lab, name)
                if os.path.exists(path):
                    self.assertEqual(mode(path), 0o600, path)


@unittest.skipUnless(os.geteuid() == 0, "not root: there is no other user to try the database as "
                     "(workers run workloads as another user only when they run as root)")
class WorkloadUser(unittest.TestCase):
    """What a diff's code, running as nobody, can do to the lab's database: nothing."""

    @classmethod
    def setUpClass(cls):
        LockedDatabase.setUpClass.__func__(cls)
        r = subprocess.run(["runuser", "-u", WORKLOAD_USER, "--", "psql", "--version"], capture_output=True,
                           text=True, cwd="/")
        assert r.returncode == 0, f"cannot run psql as {WORKLOAD_USER}: {r.stderr}"

    def test_no_connection_through_the_socket(self):
        for dsn in (self.bare, ADMIN_DSN, self.bare + " password=guess"):
            r = psql(dsn, "COPY (SELECT 1) TO PROGRAM 'id'", user=WORKLOAD_USER)
            self.assertNotEqual(r.returncode, 0, f"{WORKLOAD_USER} connected with {dsn}: {r.stdout}")
            self.assertIn("Permission denied", r.stderr, dsn)

    def test_no_connection_over_tcp(self):
        for host in ("127.0.0.1", "::1", "localhost"):
            r = psql(dsn_of(host=host, port=self.port, user="postgres", dbname="postgres", connect_timeout=5),
                     user=WORKLOAD_USER)
            self.assertNotEqual(r.returncode, 0, f"{WORKLOAD_USER} connected over TCP to {host}: {r.stdout}")
            self.assertRegex(r.stderr, r"refused|could not connect|Cannot assign|unreachable", host)

    def test_the_passfile_cannot_be_read(self):
        r = subprocess.run(["runuser", "-u", WORKLOAD_USER, "--", "cat", self.passfile], capture_output=True,
                           text=True, cwd="/")
        self.assertNotEqual(r.returncode, 0, f"{WORKLOAD_USER} read the passfile")
        self.assertEqual(r.stdout, "")


if __name__ == "__main__":
    unittest.main(verbosity=2)
