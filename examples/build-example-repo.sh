#!/usr/bin/env bash
# Build the example training repository for ttfb-lab.
#
#   examples/build-example-repo.sh DEST
#
# DEST becomes a git repository (branch main, 20 commits by seven authors) holding the small
# stdlib-only trainer of examples/trainer/ and its history, with three known start-up
# regressions, each in its own commit by its own author:
#
#   regression/eager-import        a metrics module imported eagerly at the top of train.py
#   regression/blocking-telemetry  a synchronous telemetry report in a child interpreter
#   regression/repr-memo           column statistics memoised by repr() of the whole dataset
#
# and release tags v1.0 (before the first regression), v1.1, v1.2 and v1.3 (= main), each
# release range holding exactly one regression.  All tags are lightweight.  The history
# is written out below as a series of steps; examples/README.md has the table and
# examples/example-repo.toml the machine-readable facts (verified at the end).
#
# Deterministic: fixed identities and dates, no user or system git configuration, so the
# commit SHAs are the same on every machine.  Idempotent: when DEST is already complete
# (tag example-complete, and a marker holding the fingerprint of this script and its
# inputs) it does nothing.  Otherwise it builds in a temporary directory beside DEST and
# renames that into place, so DEST is never seen half-built; an outdated or half-built
# DEST made by this script is replaced, anything else at DEST is left alone (error).
#
# Needs bash, git >= 2.32, python3 (stdlib only) and coreutils.  Takes about two seconds.

set -euo pipefail

die() { echo "build-example-repo: error: $*" >&2; exit 1; }

[[ $# -eq 1 && -n $1 && $1 != -* ]] || { echo "usage: $0 DEST" >&2; exit 2; }

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$HERE/trainer              # the trainer as first committed (step 2)
DIFFS=$HERE/diffs              # example diffs against main, verified below
FACTS=$HERE/example-repo.toml  # what functional tests read, verified below
MARKER=ttfb-example            # in DEST/.git: "building" or the fingerprint of a complete build

mkdir -p "$(dirname "$1")"
DEST=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")

command -v git >/dev/null || die "git not found"
command -v python3 >/dev/null || die "python3 not found"

# No user/system configuration may change objects (autocrlf, signing, templates, hooks).
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES
export LC_ALL=C TZ=UTC PYTHONDONTWRITEBYTECODE=1
umask 022

# Fingerprint of everything that determines the result.
fingerprint() {
  {
    cat "${BASH_SOURCE[0]}" "$FACTS"
    (cd "$HERE" && find trainer probe diffs -type f ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum)
  } | sha256sum | cut -d' ' -f1
}
FP=$(fingerprint)

is_complete() {
  [[ -d $DEST/.git ]] &&
    git -C "$DEST" rev-parse -q --verify refs/tags/example-complete >/dev/null 2>&1 &&
    [[ $(cat "$DEST/.git/$MARKER" 2>/dev/null) == "$FP" ]]
}

if is_complete; then
  echo "build-example-repo: $DEST is already complete ($(git -C "$DEST" rev-parse --short main))"
  exit 0
fi
if [[ -e $DEST ]]; then
  if [[ -f $DEST/.git/$MARKER ]] || [[ -d $DEST && -z $(ls -A "$DEST") ]]; then
    echo "build-example-repo: replacing outdated or half-built $DEST"
  else
    die "$DEST exists and is not an example repository made by this script; remove it or choose another DEST"
  fi
fi

WORK=$(mktemp -d "$(dirname "$DEST")/.$(basename "$DEST").building.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
git init -q --template= -b main .
git config core.autocrlf false
git config core.fileMode true
git config commit.gpgsign false
git config tag.gpgsign false
git config gc.auto 0
echo building > .git/$MARKER

# --- helpers ----------------------------------------------------------------------------

declare -A NAME EMAIL
person() { NAME[$1]=$2; EMAIL[$1]=$3; }
person alice "Alice Moreau"     alice.moreau@example.com      # maintainer, cuts releases
person bob   "Bob Okafor"       bob.okafor@example.com
person carol "Carol Nguyen"     carol.nguyen@example.com
person dan   "Dan Petrov"       dan.petrov@example.com
person erin  "Erin Sato"        erin.sato@example.com         # regression a
person farid "Farid Haddad"     farid.haddad@example.com      # regression b
person grace "Grace Lindqvist"  grace.lindqvist@example.com   # regression c

# commit WHO DATE SUBJECT [BODY]: commit everything in the worktree as WHO at DATE.
commit() {
  local who=$1 date=$2 subject=$3 body=${4:-}
  [[ -n ${NAME[$who]:-} ]] || die "unknown author $who"
  git add -A
  local msg=$subject
  [[ -z $body ]] || msg+=$'\n\n'$body
  GIT_AUTHOR_NAME=${NAME[$who]} GIT_AUTHOR_EMAIL=${EMAIL[$who]} GIT_AUTHOR_DATE=$date \
  GIT_COMMITTER_NAME=${NAME[$who]} GIT_COMMITTER_EMAIL=${EMAIL[$who]} GIT_COMMITTER_DATE=$date \
    git commit -q --no-verify --allow-empty-message -F - <<<"$msg"
}

tag() { git tag "$1"; }   # lightweight: `git rev-parse TAG` is the commit itself

# subst FILE: apply the edits read from stdin, each written as
#   <<<<
#   old lines (must occur exactly once in FILE)
#   ====
#   new lines
#   >>>>
SUBST_PY='
import sys
path = sys.argv[1]
text = open(path, encoding="utf-8").read()
for block in sys.stdin.read().split(">>>>\n"):
    if not block.strip():
        continue
    if not block.startswith("<<<<\n") or "\n====\n" not in "\n" + block[5:]:
        sys.exit("subst %s: malformed block:\n%s" % (path, block))
    old, _, new = ("\n" + block[5:]).partition("\n====\n")
    old = old[1:] + "\n" if old != "" else ""
    count = text.count(old) if old else 0
    if count != 1:
        sys.exit("subst %s: expected the old text exactly once, found it %d times:\n%s" % (path, count, old))
    text = text.replace(old, new)
open(path, "w", encoding="utf-8").write(text)
'
subst() { python3 -c "$SUBST_PY" "$1" || die "step failed: subst $1"; }

# --- the history ------------------------------------------------------------------------

## 1. Initial commit ---------------------------------------------------------------------
cat > README.md <<'EOF'
# example-trainer

A small text classifier trained from scratch in pure Python. It is the example workload of
ttfb-lab, which measures its *time to first batch*.
EOF
cat > LICENSE <<'EOF'
MIT License

Copyright (c) 2024 The example-trainer authors

Permission is hereby granted, free of charge, to any person obtaining a copy of this software
and associated documentation files (the "Software"), to deal in the Software without
restriction, including without limitation the rights to use, copy, modify, merge, publish,
distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED.
EOF
cat > .gitignore <<'EOF'
__pycache__/
*.pyc
/runs/
EOF
commit alice 2024-03-04T09:00:00+01:00 "Initial commit"

## 2. The trainer, as in examples/trainer/ ------------------------------------------------
mkdir -p trainer
for f in train.py ttfb_probe.py trainer/__init__.py trainer/config.py trainer/data.py trainer/model.py; do
  cp "$SRC/$f" "$f"
  chmod 644 "$f"
done
chmod 755 train.py
commit alice 2024-03-04T11:30:00+01:00 "Add the trainer: synthetic corpus, tiny MLP, ttfb probe" \
"The corpus is generated in memory from the seed, normalised (NFKC + casefold),
tokenised, turned into hashed bag-of-words features and standardised; the model is a
small MLP trained with SGD.  Start-up phases are reported to ttfb-lab through
ttfb_probe.py, which does nothing outside the lab."

## 3. Tests -------------------------------------------------------------------------------
mkdir -p tests
cat > tests/test_data.py <<'EOF'
import unittest

from trainer import data


class TokeniseTest(unittest.TestCase):
    def test_normalises_width_ligatures_and_case(self):
        self.assertEqual(data.tokenise("Ｋa ﬁ KA"), ["ka", "fi", "ka"])

    def test_splits_numbers_and_drops_punctuation(self):
        self.assertEqual(data.tokenise("ka, 2024 lo."), ["ka", "2024", "lo"])


class VocabTest(unittest.TestCase):
    def test_most_frequent_first_then_alphabetical(self):
        vocab = data.build_vocab([["b", "a"], ["b", "c"]])
        self.assertEqual(vocab, {"b": 0, "a": 1, "c": 2})


class FeaturiseTest(unittest.TestCase):
    def test_width_and_unit_norm(self):
        row = data.featurise([1, 2, 2, 3], 16)
        self.assertEqual(len(row), 16 + 3)
        self.assertAlmostEqual(sum(v * v for v in row[:16]), 1.0)
        self.assertAlmostEqual(sum(row[:16]), 0.0)


if __name__ == "__main__":
    unittest.main()
EOF
commit bob 2024-03-05T14:12:00+00:00 "Add unit tests for the tokeniser, vocabulary and features"

## 4. Docs --------------------------------------------------------------------------------
mkdir -p docs
cat > docs/configuration.md <<'EOF'
# Configuration

`train.py` picks a preset and lets a few values be overridden on the command line.

| option | meaning |
|---|---|
| `--tiny` | the tiny preset: 1024 documents, 64 hash buckets, a 67x256x128x8 MLP |
| (default) | the full preset: 60000 documents, 1024 buckets, a 1027x1024x512x8 MLP |
| `--steps N` | number of SGD steps (default 1000) |
| `--device D` | `cpu` (default, or `$TRAINER_DEVICE`); `cuda` is rejected: CPU only |
| `--seed S` | seed of the corpus, the shuffling and the initial weights |
| `--batch-size B` | override the preset's batch size |
| `--log-level L` | `debug`, `info` (default, or `$TRAINER_LOG_LEVEL`), `warning`, `error` |

Every problem with the configuration is reported at once and the trainer exits with
status 2.
EOF
commit carol 2024-03-06T10:05:00+07:00 "Document the configuration presets and options"

## 5. Makefile ----------------------------------------------------------------------------
cat > Makefile <<'EOF'
PYTHON ?= python3

.PHONY: run test
run:
	$(PYTHON) train.py --steps 1 --device cpu --tiny
test:
	$(PYTHON) -m unittest discover -s tests -v
EOF
commit dan 2024-03-07T16:40:00+02:00 "Add a Makefile with run and test targets"

## 6. Refactor (neutral) ------------------------------------------------------------------
subst trainer/data.py <<'EOF'
<<<<
_TOKEN_RE = re.compile(r"[^\W\d_]+|\d+")
====
_TOKEN_RE = re.compile(r"[^\W\d_]+|\d+")
_HASH_MULTIPLIER = 2654435761  # Knuth's multiplicative hash: spreads ids over buckets
>>>>
<<<<
        row[(i * 2654435761) % n_buckets] += 1.0
====
        row[(i * _HASH_MULTIPLIER) % n_buckets] += 1.0
>>>>
EOF
commit bob 2024-03-08T09:30:00+00:00 "Refactor: name the multiplicative hashing constant"

## 7. Logging tweak (neutral) -------------------------------------------------------------
subst train.py <<'EOF'
<<<<
    loader = data_mod.batches(dataset, cfg.batch_size, cfg.seed)
====
    loader = data_mod.batches(dataset, cfg.batch_size, cfg.seed)
    log.info("corpus: %d documents, %d distinct tokens", len(dataset), len(dataset.vocab))
>>>>
EOF
commit carol 2024-03-11T11:15:00+07:00 "Log the corpus and vocabulary sizes at start-up"

## 8. Release 1.0 -------------------------------------------------------------------------
subst trainer/__init__.py <<'EOF'
<<<<
__version__ = "0.9.0"
====
__version__ = "1.0.0"
>>>>
EOF
cat > CHANGELOG.md <<'EOF'
# Changelog

## 1.0.0 (2024-03-12)
- First release: synthetic corpus, tokeniser, hashed features, tiny MLP, ttfb probe.
EOF
commit alice 2024-03-12T17:00:00+01:00 "Release 1.0.0"
tag v1.0

## 9. REGRESSION a: eager heavy import ----------------------------------------------------
# trainer/metrics.py imports asyncio, email, xml.dom.minidom, decimal, logging.handlers at
# module level, and train.py imports it at the top even though the exporter is off unless
# --metrics-port is given.  Slows the `imports` phase.
cat > trainer/metrics.py <<'EOF'
"""Training metrics: a registry, a Prometheus endpoint, JUnit XML and e-mail summaries."""

import asyncio
import decimal
import email.mime.multipart
import email.mime.text
import json
import logging.handlers
import threading
import xml.dom.minidom

log = logging.getLogger("trainer.metrics")


class Registry:
    """Thread-safe gauges, readable while training runs."""

    def __init__(self):
        self._lock = threading.Lock()
        self._values = {}

    def set(self, name, value):
        with self._lock:
            self._values[name] = float(value)

    def snapshot(self):
        with self._lock:
            return dict(self._values)

    def prometheus_text(self):
        lines = []
        for name, value in sorted(self.snapshot().items()):
            lines.append("# TYPE trainer_%s gauge" % name)
            lines.append("trainer_%s %s" % (name, _rounded(value)))
        return "\n".join(lines) + "\n"

    def junit_xml(self, suite="training"):
        doc = xml.dom.minidom.Document()
        root = doc.createElement("testsuite")
        root.setAttribute("name", suite)
        for name, value in sorted(self.snapshot().items()):
            case = doc.createElement("testcase")
            case.setAttribute("name", name)
            case.setAttribute("value", str(_rounded(value)))
            root.appendChild(case)
        doc.appendChild(root)
        return doc.toprettyxml(indent="  ")

    def summary_email(self, sender, recipients):
        msg = email.mime.multipart.MIMEMultipart()
        msg["Subject"] = "training summary"
        msg["From"] = sender
        msg["To"] = ", ".join(recipients)
        msg.attach(email.mime.text.MIMEText(json.dumps(self.snapshot(), indent=2, sort_keys=True)))
        msg.attach(email.mime.text.MIMEText(self.junit_xml(), "xml"))
        return msg


def _rounded(value):
    return decimal.Decimal(repr(value)).quantize(decimal.Decimal("0.0001"), rounding=decimal.ROUND_HALF_EVEN)


async def _handle(registry, reader, writer):
    request = await reader.readline()
    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
        pass  # skip the headers
    parts = request.split()
    if len(parts) >= 2 and parts[0] == b"GET" and parts[1] == b"/metrics":
        status, body = b"200 OK", registry.prometheus_text().encode("utf-8")
    else:
        status, body = b"404 Not Found", b"not found\n"
    writer.write(b"HTTP/1.0 " + status + b"\r\nContent-Type: text/plain; version=0.0.4\r\n"
                 b"Content-Length: " + str(len(body)).encode("ascii") + b"\r\n\r\n" + body)
    await writer.drain()
    writer.close()


def serve(registry, port):
    """Serve GET /metrics on 127.0.0.1:port from an asyncio loop in a daemon thread."""

    async def run():
        server = await asyncio.start_server(lambda r, w: _handle(registry, r, w), "127.0.0.1", port)
        log.info("serving metrics on http://127.0.0.1:%d/metrics", port)
        async with server:
            await server.serve_forever()

    thread = threading.Thread(target=asyncio.run, args=(run(),), name="metrics", daemon=True)
    thread.start()
    return thread


async def dump_periodically(registry, path, interval_seconds):
    """Write the registry as JSON to `path` every `interval_seconds` (for sidecars)."""
    while True:
        await asyncio.sleep(interval_seconds)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(registry.snapshot(), f, sort_keys=True)


def rotating_file_handler(path):
    return logging.handlers.RotatingFileHandler(path, maxBytes=1 << 20, backupCount=3)
EOF
subst train.py <<'EOF'
<<<<
from trainer import data as data_mod
from trainer import model as model_mod
====
from trainer import data as data_mod
from trainer import metrics
from trainer import model as model_mod
>>>>
<<<<
    parser.add_argument("--log-level", default=os.environ.get("TRAINER_LOG_LEVEL", "info"),
====
    parser.add_argument("--metrics-port", type=int, default=0,
                        help="serve Prometheus metrics on this port (default: off)")
    parser.add_argument("--log-level", default=os.environ.get("TRAINER_LOG_LEVEL", "info"),
>>>>
<<<<
    log.info("model %s, %d parameters", "x".join(map(str, cfg.layer_sizes)), net.n_params)
====
    log.info("model %s, %d parameters", "x".join(map(str, cfg.layer_sizes)), net.n_params)
    registry = metrics.Registry()
    if args.metrics_port:
        metrics.serve(registry, args.metrics_port)
>>>>
<<<<
        loss = net.train_step(xs, ys, cfg.lr)
====
        loss = net.train_step(xs, ys, cfg.lr)
        registry.set("step", step)
        registry.set("loss", loss)
>>>>
EOF
commit erin 2024-03-14T13:20:00+09:00 "Export training metrics over HTTP, as JUnit XML and by e-mail" \
"trainer/metrics.py keeps gauges in a thread-safe registry and can serve them in the
Prometheus text format from an asyncio server (--metrics-port), render them as JUnit
XML for CI, or as an e-mail summary."
tag regression/eager-import

## 10. Docs (neutral) ---------------------------------------------------------------------
cat > docs/metrics.md <<'EOF'
# Metrics

`train.py --metrics-port 9100` serves the current step and loss at
`http://127.0.0.1:9100/metrics` in the Prometheus text format while training runs.
`trainer.metrics.Registry` can also render the values as JUnit XML (for CI dashboards)
or as an e-mail summary.
EOF
commit carol 2024-03-15T09:45:00+07:00 "Document the metrics exporter"

## 11. Tests (neutral) --------------------------------------------------------------------
cat > tests/test_config.py <<'EOF'
import argparse
import unittest

from trainer import config


def args(**overrides):
    values = dict(tiny=True, steps=1, device="cpu", seed=1, batch_size=None)
    values.update(overrides)
    return argparse.Namespace(**values)


class ConfigTest(unittest.TestCase):
    def test_tiny_preset_is_valid(self):
        cfg = config.build(args())
        self.assertEqual(cfg.preset, "tiny")
        self.assertEqual(cfg.layer_sizes[0], cfg.n_buckets + 3)

    def test_cuda_is_rejected(self):
        with self.assertRaisesRegex(config.ConfigError, "CPU-only"):
            config.build(args(device="cuda"))

    def test_every_problem_is_reported(self):
        with self.assertRaises(config.ConfigError) as caught:
            config.build(args(steps=0, batch_size=5000))
        self.assertIn("steps", str(caught.exception))
        self.assertIn("batch_size", str(caught.exception))


if __name__ == "__main__":
    unittest.main()
EOF
commit bob 2024-03-18T15:00:00+00:00 "Test that config validation reports every problem"

## 12. Release 1.1 ------------------------------------------------------------------------
subst trainer/__init__.py <<'EOF'
<<<<
__version__ = "1.0.0"
====
__version__ = "1.1.0"
>>>>
EOF
subst CHANGELOG.md <<'EOF'
<<<<
# Changelog

====
# Changelog

## 1.1.0 (2024-03-19)
- Metrics exporter: Prometheus endpoint, JUnit XML and e-mail summaries.

>>>>
EOF
commit alice 2024-03-19T17:00:00+01:00 "Release 1.1.0"
tag v1.1

## 13. Refactor (neutral) -----------------------------------------------------------------
subst trainer/model.py <<'EOF'
<<<<
    @property
    def n_params(self):
====
    @classmethod
    def from_config(cls, cfg):
        return cls(cfg.layer_sizes, cfg.seed)

    @property
    def n_params(self):
>>>>
EOF
subst train.py <<'EOF'
<<<<
    net = model_mod.MLP(cfg.layer_sizes, cfg.seed)
====
    net = model_mod.MLP.from_config(cfg)
>>>>
EOF
commit dan 2024-03-20T10:10:00+02:00 "Refactor: build the model with MLP.from_config"

## 14. REGRESSION b: blocking telemetry ---------------------------------------------------
# train.py reports the run start synchronously, by running a reporter in a second Python
# interpreter and waiting for it to finish.  Slows the `config` phase.
cat > trainer/telemetry.py <<'EOF'
"""Start-up telemetry: tell the fleet's collector that a run started.

The event is sent before training begins, and synchronously, so that runs that crash
early are counted too.  The reporter runs in its own interpreter so that a broken
collector cannot disturb the trainer.  Without TRAINER_TELEMETRY_URL the event is only
printed by the reporter (and discarded).
"""

import json
import logging
import subprocess
import sys
import time

log = logging.getLogger("trainer.telemetry")

_REPORTER = r"""
import json, os, platform, socket, sys, urllib.parse
event = json.load(sys.stdin)
uname = platform.uname()
event["host"] = {"node": uname.node, "system": uname.system, "release": uname.release,
                 "machine": uname.machine, "python": platform.python_version()}
body = json.dumps(event, sort_keys=True).encode("utf-8")
url = urllib.parse.urlsplit(os.environ.get("TRAINER_TELEMETRY_URL", ""))
if url.hostname:
    with socket.create_connection((url.hostname, url.port or 80), timeout=2) as conn:
        conn.sendall(b"POST %s HTTP/1.0\r\nHost: %s\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (url.path.encode() or b"/", url.hostname.encode(),
                                                       len(body), body))
        conn.recv(1024)
else:
    sys.stdout.buffer.write(body + b"\n")
"""


def report_run_start(cfg):
    """Report a run_start event; return True when the reporter succeeded."""
    event = {"event": "run_start", "time": time.time(), "preset": cfg.preset,
             "steps": cfg.steps, "device": cfg.device, "seed": cfg.seed}
    try:
        done = subprocess.run([sys.executable, "-c", _REPORTER], input=json.dumps(event),
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("telemetry: %s", exc)
        return False
    if done.returncode != 0:
        log.warning("telemetry reporter failed: %s", done.stderr.strip()[-200:])
    return done.returncode == 0
EOF
subst train.py <<'EOF'
<<<<
from trainer import model as model_mod
====
from trainer import model as model_mod
from trainer import telemetry
>>>>
<<<<
    log.info("trainer %s, preset %s, %d steps on %s", __version__, cfg.preset, cfg.steps, cfg.device)
====
    log.info("trainer %s, preset %s, %d steps on %s", __version__, cfg.preset, cfg.steps, cfg.device)
    telemetry.report_run_start(cfg)
>>>>
EOF
commit farid 2024-03-21T08:55:00+04:00 "Report run start to the telemetry collector" \
"Fleet dashboards need to count runs that crash during start-up, so the run_start event
is sent before training begins and we wait for it to be delivered."
tag regression/blocking-telemetry

## 15. Docs (neutral) ---------------------------------------------------------------------
subst README.md <<'EOF'
<<<<
A small text classifier trained from scratch in pure Python. It is the example workload of
ttfb-lab, which measures its *time to first batch*.
====
A small text classifier trained from scratch in pure Python. It is the example workload of
ttfb-lab, which measures its *time to first batch*.

    python3 train.py --steps 1 --device cpu --tiny    # start-up as ttfb-lab measures it
    make test                                         # unit tests (standard library only)

See docs/configuration.md for the options and docs/metrics.md for the metrics exporter.
>>>>
EOF
commit carol 2024-03-25T12:30:00+07:00 "README: how to run the trainer and the tests"

## 16. Tests (neutral) --------------------------------------------------------------------
cat > tests/test_model.py <<'EOF'
import unittest

from trainer import model


class MLPTest(unittest.TestCase):
    def test_shapes_and_parameter_count(self):
        net = model.MLP((5, 4, 3), seed=0)
        acts = net.forward([0.1] * 5)
        self.assertEqual([len(a) for a in acts], [5, 4, 3])
        self.assertEqual(net.n_params, 5 * 4 + 4 + 4 * 3 + 3)

    def test_training_reduces_the_loss_on_a_fixed_batch(self):
        net = model.MLP((4, 8, 2), seed=1)
        xs = [[1.0, 0.0, 0.5, -0.5], [0.0, 1.0, -0.5, 0.5]]
        ys = [0, 1]
        first = net.train_step(xs, ys, 0.5)
        for _ in range(20):
            last = net.train_step(xs, ys, 0.5)
        self.assertLess(last, first)


if __name__ == "__main__":
    unittest.main()
EOF
commit bob 2024-03-26T16:20:00+00:00 "Add model shape and training tests"

## 17. Release 1.2 ------------------------------------------------------------------------
subst trainer/__init__.py <<'EOF'
<<<<
__version__ = "1.1.0"
====
__version__ = "1.2.0"
>>>>
EOF
subst CHANGELOG.md <<'EOF'
<<<<
# Changelog

====
# Changelog

## 1.2.0 (2024-03-27)
- Run-start telemetry for fleet dashboards.

>>>>
EOF
commit alice 2024-03-27T17:00:00+01:00 "Release 1.2.0"
tag v1.2

## 18. REGRESSION c: memoisation keyed by repr() of a large structure ---------------------
# A generic @memoise decorator keys its cache by a digest of repr(args) and is put on
# column_stats() and standardise(): each call repr()s the whole feature matrix (~70,000
# floats), which costs more than the statistics themselves, and the caches never hit within
# a run.  Slows the `data` phase.
subst trainer/data.py <<'EOF'
<<<<
import collections
====
import collections
import functools
import hashlib
>>>>
<<<<
def column_stats(rows):
====
def memoise(func):
    """Cache func's results by the content of its arguments."""
    cache = {}

    @functools.wraps(func)
    def wrapper(*args):
        key = hashlib.sha1(repr(args).encode("utf-8")).hexdigest()
        if key not in cache:
            cache[key] = func(*args)
        return cache[key]

    wrapper.cache = cache
    return wrapper


@memoise
def column_stats(rows):
>>>>
<<<<
def standardise(rows):
====
@memoise
def standardise(rows):
>>>>
EOF
commit grace 2024-04-02T11:05:00-04:00 "Memoise column statistics and standardisation by content" \
"Evaluation splits and reloaded datasets are standardised again and again; a small
@memoise decorator now caches the results under a digest of the arguments."
tag regression/repr-memo

## 19. Small feature (neutral) ------------------------------------------------------------
subst train.py <<'EOF'
<<<<
    parser.add_argument("--metrics-port", type=int, default=0,
                        help="serve Prometheus metrics on this port (default: off)")
====
    parser.add_argument("--metrics-port", type=int, default=int(os.environ.get("TRAINER_METRICS_PORT", "0")),
                        help="serve Prometheus metrics on this port (default: $TRAINER_METRICS_PORT or off)")
>>>>
EOF
subst docs/metrics.md <<'EOF'
<<<<
`train.py --metrics-port 9100` serves the current step and loss at
====
`train.py --metrics-port 9100` (or `TRAINER_METRICS_PORT=9100`) serves the current step and loss at
>>>>
EOF
commit dan 2024-04-03T10:00:00+02:00 "Read the metrics port from TRAINER_METRICS_PORT too"

## 20. Release 1.3 ------------------------------------------------------------------------
subst trainer/__init__.py <<'EOF'
<<<<
__version__ = "1.2.0"
====
__version__ = "1.3.0"
>>>>
EOF
subst CHANGELOG.md <<'EOF'
<<<<
# Changelog

====
# Changelog

## 1.3.0 (2024-04-04)
- Column statistics are memoised.
- TRAINER_METRICS_PORT sets the metrics port.

>>>>
EOF
commit alice 2024-04-04T17:00:00+02:00 "Release 1.3.0"
tag v1.3

# --- verification -----------------------------------------------------------------------

[[ $(git rev-list --count main) -eq 20 ]] || die "expected 20 commits on main"
[[ -z $(git status --porcelain) ]] || die "worktree not clean after the history"

# The trainer's probe helper is the canonical one users copy.
cmp -s "$SRC/ttfb_probe.py" "$HERE/probe/python/ttfb_probe.py" ||
  die "examples/trainer/ttfb_probe.py and examples/probe/python/ttfb_probe.py differ"

# The example diffs: two apply at the root of main, one does not.
for d in eager-import neutral; do
  out=$(git apply --check "$DIFFS/$d.diff" 2>&1) || die "examples/diffs/$d.diff does not apply to main: $out"
done
if out=$(git apply --check "$DIFFS/does-not-apply.diff" 2>&1); then
  die "examples/diffs/does-not-apply.diff applies to main, it must not"
fi
[[ $out == *"patch does not apply"* ]] || die "unexpected message from git apply for does-not-apply.diff: $out"

# The tip runs and reports through both probes (fd and stdout); this also proves that the
# trainer works without TTFB_PROBE_FD being a pipe.
probe_out=$(mktemp)
stdout=$(env -i PATH=/usr/local/bin:/usr/bin:/bin PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1 TTFB_PROBE_FD=3 \
  python3 train.py --steps 1 --device cpu --tiny --log-level warning 3>"$probe_out") ||
  { rm -f "$probe_out"; die "the trainer failed at main"; }
probe=$(tr '\n' ' ' <"$probe_out"); rm -f "$probe_out"
[[ $probe == "phase imports phase config phase data phase model first_batch " ]] ||
  die "unexpected probe output at main: $probe"
[[ $stdout == "first batch ready"* ]] || die "unexpected stdout at main: $stdout"

# examples/example-repo.toml agrees with the history (tags, SHAs, subjects, authors).
python3 - "$FACTS" <<'EOF' || die "examples/example-repo.toml does not match the built repository (see above)"
import subprocess, sys, tomllib
facts = tomllib.load(open(sys.argv[1], "rb"))
def git(*args):
    return subprocess.run(("git",) + args, check=True, capture_output=True, text=True).stdout.strip()
bad = []
def expect(what, want, got):
    if want != got:
        bad.append("%s: toml says %r, repository has %r" % (what, want, got))
expect("main", facts["main"], git("rev-parse", "main"))
expect("commits", facts["commits"], int(git("rev-list", "--count", "main")))
for rel in facts["releases"]:
    expect(rel["tag"], rel["commit"], git("rev-parse", rel["tag"]))
for reg in facts["regressions"]:
    fmt = "%H%n%P%n%s%n%an%n%ae"
    sha, parent, subject, name, mail = git("log", "-1", "--format=" + fmt, reg["tag"]).split("\n")
    for key, got in (("commit", sha), ("parent", parent), ("subject", subject),
                     ("author_name", name), ("author_email", mail)):
        expect("%s %s" % (reg["tag"], key), reg[key], got)
for msg in bad:
    print("example-repo.toml:", msg, file=sys.stderr)
sys.exit(1 if bad else 0)
EOF

# Done: mark complete and move into place (rename: DEST is never seen half-built).
tag example-complete
echo "$FP" > .git/$MARKER
cd /
if [[ -e $DEST ]]; then
  is_complete && { echo "build-example-repo: $DEST was completed concurrently"; exit 0; }
  [[ -f $DEST/.git/$MARKER ]] || [[ -d $DEST && -z $(ls -A "$DEST") ]] ||
    die "$DEST appeared while building and is not an example repository made by this script"
  rm -rf "$DEST"
fi
mv -T "$WORK" "$DEST" 2>/dev/null || { is_complete && exit 0; die "cannot move the repository to $DEST"; }
trap - EXIT
echo "build-example-repo: built $DEST: main $(git -C "$DEST" rev-parse --short main), $(git -C "$DEST" rev-list --count main) commits"
