#!/usr/bin/env python3
"""Writes the seed corpora of fuzz/corpus/<target>/ from the project's real inputs.

    python3 fuzz/make_seeds.py        # rewrites fuzz/corpus/ (deterministic; commit the result)

Sources: request targets and bodies of the API table (README "API"), full HTTP requests built
from them, tests/data/probe's transcripts (in probe_fuzz's input format), the configurations of
configs/ and tests/data/config/, and diffs: examples/diffs/ plus diffs made here by real
`git diff --binary` against the repository diff_fuzz builds (examples/trainer, run.sh, a symlink,
a binary file) and a few hostile ones (paths into .git/ or outside the tree, a .gitattributes
filter, a write through a symlink). Inputs that once found a bug are kept in
fuzz/corpus/<target>/regression-* and are not touched by this script.
"""
import codecs
import json
import os
import pathlib
import shutil
import subprocess
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"


def reset(target):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    for f in d.iterdir():
        if not f.name.startswith("regression-"):
            f.unlink()
    return d


def write(d, name, data):
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


TARGETS = [
    "/api/v1/experiments", "/api/v1/experiments/42", "/api/v1/experiments?status=done&repo=example&limit=5",
    "/api/v1/experiments/42/samples", "/api/v1/experiments/42/cancel", "/api/v1/experiments/42/diff",
    "/api/v1/releases?repo=example&status=blocked&limit=10", "/api/v1/releases/v1.3",
    "/api/v1/bisections/7", "/api/v1/bisections?repo=example&status=found&limit=3",
    "/api/v1/repos", "/api/v1/workflows", "/api/v1/workflows/example-train",
    "/api/v1/workflows/example-train/history?limit=20", "/api/v1/workflows/example-train/calibrate",
    "/api/v1/alerts?status=pending&repo=example&kind=culprit&limit=50", "/api/v1/workers",
    "/api/v1/jobs?state=running&limit=100", "/api/v1/worker/claim", "/api/v1/worker/jobs/9/heartbeat",
    "/api/v1/worker/jobs/9/samples", "/api/v1/openapi.json", "/healthz", "/readyz", "/metrics", "/",
    "/app.js", "/experiments/42", "/api/v1/experiments?repo=my%20repo&title=caf%C3%A9+au+lait",
    # The attacks of issue 13: invalid UTF-8, encoded traversal, encoded NUL and control characters.
    "/%ff", "/api/v1/%2e%2e/%2e%2e/etc/passwd", "/static/..%2f..%2fsecret", "/a%00b", "/?q=%0d%0aSet-Cookie:x",
]

BODIES = {
    "experiment": {"repo": "example", "base": "main", "diff": "diff --git a/train.py b/train.py\n", "workflows": ["example-train"],
                   "author": "Ada <ada@example.com>", "title": "Lazy imports", "change_url": "https://example.com/c/1",
                   "purpose": "presubmit"},
    "experiment_candidate": {"repo": "example", "base": "v1.2", "candidate": "v1.3", "runs_per_arm": 20},
    "release": {"name": "v1.3", "repo": "example", "base": "v1.2", "candidate": "v1.3", "workflows": ["example-train"],
                "owner": "Release Bot", "owner_email": "release@example.com"},
    "bisection": {"repo": "example", "good": "v1.0", "bad": "main", "workflow": "example-train"},
    "calibrate": {"base": "main", "runs_per_arm": 30, "batches": 4},
    "claim": {"worker": {"name": "worker-1", "host": "ci-7", "cpu_model": "AMD EPYC", "kernel": "6.1.0",
                         "version": "0.1.0", "cores": 2}},
    "heartbeat": {"lease_id": "9f2c", "attempt": 1},
    "samples": {"lease_id": "9f2c", "attempt": 1, "samples": [{"arm": "baseline", "run": 0, "ttfb_ms": 812.5,
                                                               "warmup": True, "phases": {"imports": 120.0}}]},
    "fail": {"lease_id": "9f2c", "attempt": 1, "error": "build failed: exit status 2"},
}


def http_seeds():
    d = reset("http_target")
    for i, t in enumerate(TARGETS):
        write(d, f"target-{i:02d}", t)
    d = reset("http_request")
    # First byte: the read size (0: one read); then the connection's bytes.
    for i, t in enumerate(TARGETS[:8] + TARGETS[-5:]):
        write(d, f"get-{i:02d}", b"\x00" + f"GET {t} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept: application/json\r\n\r\n".encode())
    body = json.dumps(BODIES["experiment"]).encode()
    post = (b"POST /api/v1/experiments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer abc\r\n"
            b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    write(d, "post-experiment", b"\x00" + post)
    write(d, "post-experiment-7-byte-reads", b"\x07" + post)
    write(d, "pipelined", b"\x00" + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + post + b"GET /metrics HTTP/1.0\r\n\r\n")
    write(d, "chunked", b"\x05POST /api/v1/worker/claim HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
          b"5\r\n{\"a\":\r\n3\r\n 1}\r\n0\r\n\r\n")
    write(d, "post-ff", b"\x00POST /%ff HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Length: 0\r\n\r\n")
    write(d, "absolute-form", b"\x00GET http://127.0.0.1:8080/healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    write(d, "huge-content-length", b"\x00POST / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n")


def json_seeds():
    d = reset("json_body")
    for name, b in BODIES.items():
        write(d, name, json.dumps(b))
    write(d, "nested-33", "[" * 33 + "]" * 33)
    write(d, "nested-32", '{"a":' * 31 + "[]" + "}" * 31)
    write(d, "not-object", '["repo"]')
    write(d, "bad-utf8-escape", '{"repo": "\\ud800"}')
    write(d, "nul", '{"repo": "a\\u0000b", "runs_per_arm": 1e3, "workflows": [1]}')


def probe_seeds():
    d = reset("probe")
    for t in sorted((ROOT / "tests/data/probe").glob("*.transcript")):
        out = bytearray([0])
        last = 0.0
        for line in t.read_text().splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            ms, _, quoted = line.partition(" ")
            data = codecs.escape_decode(quoted.strip()[1:-1].encode())[0]
            step = min(255, max(0, int(round(float(ms) - last))))
            last = float(ms)
            out += len(data).to_bytes(2, "little") + bytes([step]) + data
        write(d, t.stem, bytes(out))
    # Stdout probes (mode 0: "^first batch ready"; mode 4: "^\[train\] ..."): progress bars redraw with '\r'.
    reads = [b"loading data 10%\rloading data 100%\n", b"step 0 loss=2.31\r", b"first batch ready\n"]
    write(d, "stdout-progress", bytes([0]) + b"".join(len(r).to_bytes(2, "little") + b"\x05" + r for r in reads))
    reads = [b"[train] epoch 0 step 0 started\n"]
    write(d, "stdout-train", bytes([5]) + b"".join(len(r).to_bytes(2, "little") + b"\x05" + r for r in reads))
    long_line = b"x" * 5000 + b"\nphase after_long\nfirst_batch\n"
    write(d, "overlong", bytes([0]) + len(long_line).to_bytes(2, "little") + b"\x01" + long_line)
    # A stdout line past StdoutMatcher's 8 KiB limit, matching, then one within it (also makes
    # libFuzzer's length limit start above 8 KiB).
    reads = [b"first batch ready " + b"y" * 8200, b"\rfirst batch ready\n"]
    write(d, "stdout-overlong", bytes([0]) + b"".join(len(r).to_bytes(2, "little") + b"\x02" + r for r in reads))


def config_seeds():
    d = reset("config")
    files = sorted((ROOT / "configs").rglob("*.toml")) + sorted((ROOT / "tests/data/config").rglob("*.toml"))
    for f in files:
        write(d, str(f.relative_to(ROOT)).replace("/", "_"), f.read_bytes())


def git(*args, cwd):
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null", GIT_AUTHOR_NAME="Fuzz",
               GIT_COMMITTER_NAME="Fuzz", GIT_AUTHOR_EMAIL="fuzz@example.com", GIT_COMMITTER_EMAIL="fuzz@example.com",
               GIT_AUTHOR_DATE="2026-01-01T00:00:00Z", GIT_COMMITTER_DATE="2026-01-01T00:00:00Z")
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True).stdout


def diff_seeds():
    d = reset("diff")
    for f in sorted((ROOT / "examples/diffs").glob("*.diff")):
        write(d, "example-" + f.name, f.read_bytes())
    with tempfile.TemporaryDirectory() as tmp:
        # The repository of diff_fuzz.cpp's LLVMFuzzerInitialize, file for file.
        src = pathlib.Path(tmp) / "src"
        shutil.copytree(ROOT / "examples/trainer", src, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (src / "run.sh").write_text('#!/bin/sh\nexec python3 train.py --steps 1 --tiny "$@"\n')
        (src / "run.sh").chmod(0o755)
        (src / "latest.py").symlink_to("train.py")
        (src / "data").mkdir()
        (src / "data/weights.bin").write_bytes(b"\x00\x01\x02\xff\xfe\x00tensor\x00\x00")
        git("init", "--quiet", "--initial-branch=main", cwd=src)
        git("add", "-A", cwd=src)
        git("commit", "--quiet", "-m", "trainer", cwd=src)

        def change(name, edit):
            edit()
            git("add", "-A", cwd=src)
            write(d, name, git("diff", "--cached", "--binary", "-M", cwd=src))
            git("reset", "--quiet", "--hard", cwd=src)

        train = src / "train.py"
        change("edit", lambda: train.write_text(train.read_text().replace("import", "import  ", 1)))
        change("add-file", lambda: (src / "trainer/tracking.py").write_text("def start_run(args):\n    return None\n"))
        change("delete-file", lambda: (src / "trainer/model.py").unlink())
        change("rename", lambda: (src / "trainer/config.py").rename(src / "trainer/settings.py"))
        change("mode", lambda: (src / "run.sh").chmod(0o644))
        change("binary", lambda: (src / "data/weights.bin").write_bytes(b"\x00\x09" * 40))
        change("symlink", lambda: ((src / "latest.py").unlink(), (src / "latest.py").symlink_to("trainer/model.py")))
    hostile = {
        "hostile-git-hook": "diff --git a/.git/hooks/post-checkout b/.git/hooks/post-checkout\nnew file mode 100755\n"
                            "--- /dev/null\n+++ b/.git/hooks/post-checkout\n@@ -0,0 +1 @@\n+touch /tmp/pwned\n",
        "hostile-outside": "diff --git a/../outside b/../outside\nnew file mode 100644\n--- /dev/null\n+++ b/../outside\n"
                           "@@ -0,0 +1 @@\n+x\n",
        "hostile-gitattributes": "diff --git a/.gitattributes b/.gitattributes\nnew file mode 100644\n--- /dev/null\n"
                                 "+++ b/.gitattributes\n@@ -0,0 +1 @@\n+*.py filter=evil\n",
        "hostile-through-symlink": "diff --git a/evil b/evil\nnew file mode 120000\n--- /dev/null\n+++ b/evil\n"
                                   "@@ -0,0 +1 @@\n+/tmp\n\\ No newline at end of file\n"
                                   "diff --git a/evil/x b/evil/x\nnew file mode 100644\n--- /dev/null\n+++ b/evil/x\n"
                                   "@@ -0,0 +1 @@\n+x\n",
        "not-a-diff": "hello world\n",
    }
    for name, text in hostile.items():
        write(d, name, text)


def utf8_seeds():
    d = reset("utf8")
    samples = {
        "ascii": b"\x10the request path", "latin": b"\x05caf\xc3\xa9 au lait", "cjk-cut": b"\x04\xe6\x97\xa5\xe6\x9c\xac",
        "emoji": b"\x06\xf0\x9f\x9a\x80 go", "overlong": b"\x08\xc0\xaf\xe0\x80\xaf", "surrogate": b"\x03\xed\xa0\x80",
        "above-max": b"\x04\xf4\x90\x80\x80", "truncated": b"\x02\xe2\x82", "ff": b"\x01\xff/",
    }
    for name, data in samples.items():
        write(d, name, data)


if __name__ == "__main__":
    http_seeds()
    json_seeds()
    probe_seeds()
    config_seeds()
    diff_seeds()
    utf8_seeds()
    for t in sorted(CORPUS.iterdir()):
        print(f"{t.name}: {len(list(t.iterdir()))} seeds")
