"""The probe helpers (examples/probe/python/ttfb_probe.py, examples/probe/c/ttfb_probe.h) in real
processes: they write to the worker's pipe, and to nothing else — not into a file that has the
pipe's number in a process started by multiprocessing's spawn or forkserver, or by a launcher
that closes descriptors, and not from a rank other than 0 (docs/worker-protocol.md)."""
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
PY_HELPER = os.path.join(SOURCE, "examples", "probe", "python")
C_HELPER = os.path.join(SOURCE, "examples", "probe", "c")

# A training script's start-up in miniature: a DataLoader-like pool of worker processes started
# with the given method, each importing the probe (as a dataset module that calls it would) and
# writing a file of its own first, so that the descriptor number of the parent's pipe is taken by
# that file in the child (the lowest free number is the pipe's, closed there). The parent reports
# phases and the first batch.
SCRIPT = textwrap.dedent("""
    import multiprocessing as mp, os, sys
    sys.path.insert(0, {helper!r})

    def child(path):
        fd = int(os.environ["TTFB_PROBE_FD"])
        f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        if mp.get_start_method() != "fork":
            # Spawned: the pipe is not here, and the number is free; a file of the child's takes it.
            try:
                os.fstat(fd)
                raise SystemExit("the pipe's number is open in a spawned child")
            except OSError:
                pass
            os.dup2(f, fd)
            os.close(f)
            f = fd
        os.write(f, b"child's own data\\n")
        import ttfb_probe
        ttfb_probe.phase("worker")
        ttfb_probe.first_batch()
        os.close(f)
        return ttfb_probe.enabled()

    if __name__ == "__main__":
        import ttfb_probe
        ttfb_probe.phase("imports")
        ctx = mp.get_context(sys.argv[1])
        with ctx.Pool(2) as pool:
            enabled = pool.map(child, [sys.argv[2] + str(i) for i in range(2)])
        ttfb_probe.phase("model")
        ttfb_probe.first_batch()
        print("children enabled:", enabled)
""")


def free_fd(start=37):
    """A descriptor number not open here (high, so that no interpreter start-up takes it)."""
    n = start
    while True:
        try:
            os.fstat(n)
        except OSError:
            return n
        n += 1


def run_with_pipe(argv, env_extra=None, with_id=True):
    """Runs argv with a probe pipe at a high descriptor, as the worker passes its pipe (the number
    in TTFB_PROBE_FD, the pipe's identity in TTFB_PROBE_ID); returns (stdout, probe lines)."""
    r, w = os.pipe()
    n = free_fd()
    os.dup2(w, n, inheritable=True)
    os.close(w)
    env = {"PATH": os.environ["PATH"], "TTFB_PROBE_FD": str(n), **(env_extra or {})}
    if with_id:
        st = os.fstat(n)
        env["TTFB_PROBE_ID"] = "%d:%d" % (st.st_dev, st.st_ino)
    try:
        p = subprocess.Popen(argv, env=env, pass_fds=(n,), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    finally:
        os.close(n)
    out, err = p.communicate(timeout=120)
    lines = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        lines += chunk
    os.close(r)
    if p.returncode != 0:
        raise AssertionError(f"{argv} failed ({p.returncode}):\n{err.decode()}")
    return out.decode(), lines.decode().split("\n")[:-1]


class PythonHelper(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.script = os.path.join(self.tmp, "train.py")
        with open(self.script, "w") as f:
            f.write(SCRIPT.format(helper=PY_HELPER))

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def children_files(self):
        out = []
        for i in range(2):
            with open(os.path.join(self.tmp, "data") + str(i)) as f:
                out.append(f.read())
        return out

    def test_spawned_and_forkserver_children_write_nothing_into_their_own_files(self):
        for method in ("spawn", "forkserver"):
            with self.subTest(method=method):
                out, lines = run_with_pipe([sys.executable, self.script, method, os.path.join(self.tmp, "data")])
                self.assertEqual(lines, ["phase imports", "phase model", "first_batch"], "only the parent reports")
                self.assertEqual(self.children_files(), ["child's own data\n"] * 2, "nothing written into them")
                self.assertIn("children enabled: [False, False]", out)

    def test_forked_children_hold_the_pipe_and_may_report(self):
        out, lines = run_with_pipe([sys.executable, self.script, "fork", os.path.join(self.tmp, "data")])
        self.assertEqual(lines[0], "phase imports")
        self.assertEqual(lines.count("phase worker"), 2, "each forked child's mark, on the pipe")
        # The parent's first batch, and each child process's (one pool process may take both tasks).
        self.assertIn(lines.count("first_batch"), (2, 3), lines)
        self.assertEqual(self.children_files(), ["child's own data\n"] * 2)

    def test_a_rank_other_than_0_is_silent(self):
        code = f"import sys; sys.path.insert(0, {PY_HELPER!r}); import ttfb_probe; ttfb_probe.first_batch(); print(ttfb_probe.enabled())"
        out, lines = run_with_pipe([sys.executable, "-c", code], {"RANK": "1"})
        self.assertEqual((out.strip(), lines), ("False", []))
        out, lines = run_with_pipe([sys.executable, "-c", code], {"RANK": "0"})
        self.assertEqual((out.strip(), lines), ("True", ["first_batch"]))

    def test_without_an_identity_the_descriptor_named_is_used(self):
        code = f"import sys; sys.path.insert(0, {PY_HELPER!r}); import ttfb_probe; ttfb_probe.phase('x')"
        _, lines = run_with_pipe([sys.executable, "-c", code], with_id=False)
        self.assertEqual(lines, ["phase x"])


class CHelper(unittest.TestCase):
    def setUp(self):
        self.cc = shutil.which("cc") or shutil.which("gcc")
        self.assertIsNotNone(self.cc, "no C compiler: ./lab installs build-essential")
        self.tmp = tempfile.mkdtemp()
        src = os.path.join(self.tmp, "t.c")
        with open(src, "w") as f:
            f.write(textwrap.dedent("""
                #include "ttfb_probe.h"
                #include <fcntl.h>
                #include <stdio.h>
                int main(int argc, char **argv) {
                    if (argc > 1) {  /* the descriptor's number taken by a file of our own */
                        int n = atoi(getenv("TTFB_PROBE_FD"));
                        int f = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
                        if (f < 0 || dup2(f, n) != n) return 9;
                        if (write(n, "own\\n", 4) != 4) return 9;
                    }
                    ttfb_probe_phase("imports");
                    ttfb_probe_first_batch();
                    printf("%d\\n", ttfb_probe_enabled());
                    return 0;
                }
            """))
        self.exe = os.path.join(self.tmp, "t")
        subprocess.run([self.cc, "-Wall", "-Werror", "-I", C_HELPER, "-o", self.exe, src], check=True)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def test_it_writes_to_the_pipe(self):
        self.assertEqual(run_with_pipe([self.exe]), ("1\n", ["phase imports", "first_batch"]))

    def test_another_file_under_the_pipes_number_is_left_alone(self):
        own = os.path.join(self.tmp, "own")
        self.assertEqual(run_with_pipe([self.exe, own]), ("0\n", []))
        with open(own) as f:
            self.assertEqual(f.read(), "own\n")

    def test_a_rank_other_than_0_is_silent(self):
        self.assertEqual(run_with_pipe([self.exe], {"RANK": "3"}), ("0\n", []))


if __name__ == "__main__":
    unittest.main()
