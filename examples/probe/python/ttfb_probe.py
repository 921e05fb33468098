"""ttfb_probe -- report start-up phases and the first batch to ttfb-lab.

Copy this file into your project (it needs only the standard library) and call::

    import ttfb_probe
    ttfb_probe.phase("imports")      # phase "imports" begins
    ...
    ttfb_probe.phase("data")         # phase "data" begins (and "imports" ends)
    ...
    ttfb_probe.first_batch()         # the first batch enters the model

Protocol: the ttfb-lab worker passes the write end of a pipe and its number in the
environment variable TTFB_PROBE_FD.  Each call writes one ASCII line to that file
descriptor, unbuffered, with a single os.write():

    phase NAME\n      when phase NAME begins
    first_batch\n     when the first batch enters the model (sent at most once)

The worker timestamps the lines on its side (CLOCK_MONOTONIC); a phase lasts until the
next mark, and the last phase ends at first_batch.

With TTFB_PROBE_FD unset (or empty) every call does nothing, so the program behaves
the same outside the lab.

Which process reports: the worker also sets TTFB_PROBE_ID to the pipe's identity
("DEV:INO"), and the probe writes only when its descriptor is that pipe (without
TTFB_PROBE_ID, to whatever TTFB_PROBE_FD names, as for a pipe of your own).  The process
the worker started and the children it forks (DataLoader workers under fork) hold the
pipe; a process started by spawn or forkserver, or by a launcher that closes
descriptors (torchrun, subprocess), inherits the variables but not the pipe -- its
number may be some other file there -- and its probe stays silent.  A process whose
RANK is set and not 0 stays silent too.  The worker takes the first first_batch it
reads, so a distributed job's rank 0 decides.

Phase names are 1-64 characters from [A-Za-z0-9_.-]; other names raise ValueError whether or not the probe is enabled.  If writing fails (bad
descriptor, closed pipe) the probe prints one warning to stderr and disables itself:
a measurement problem never crashes the program.

This module imports only os and sys (both already loaded by the interpreter), so
importing it first costs nothing measurable.
"""

import os
import sys

__all__ = ["phase", "first_batch", "enabled", "ENV_VAR", "ID_VAR"]

ENV_VAR = "TTFB_PROBE_FD"
ID_VAR = "TTFB_PROBE_ID"
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_MAX_NAME = 64


def _warn(message):
    try:
        sys.stderr.write("ttfb_probe: %s\n" % message)
        sys.stderr.flush()
    except Exception:  # stderr closed: stay silent
        pass


def _fd_from_env():
    value = os.environ.get(ENV_VAR, "").strip()
    if not value:
        return None
    try:
        fd = int(value)
    except ValueError:
        fd = -1
    if fd < 0:
        _warn("%s=%r is not a file descriptor number; probe disabled" % (ENV_VAR, value))
        return None
    rank = os.environ.get("RANK", "").strip()
    if rank not in ("", "0"):
        return None  # not rank 0: rank 0 reports for the job
    # Is the descriptor the worker's pipe?  Not open here, or another file under that number
    # (a process started by spawn or a launcher): silent, and nothing is written to it.
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    expected = os.environ.get(ID_VAR, "").strip()
    if expected and "%d:%d" % (st.st_dev, st.st_ino) != expected:
        return None
    return fd


_fd = _fd_from_env()
_first_batch_sent = False


def enabled():
    """True when marks are being written (TTFB_PROBE_FD set and still writable)."""
    return _fd is not None


def _write(line):
    global _fd
    if _fd is None:
        return
    try:
        # Lines are far shorter than PIPE_BUF, so a write to a pipe is atomic:
        # one call, one complete line.  (os.write retries EINTR by itself.)
        written = os.write(_fd, line)
        if written != len(line):  # only possible on exotic non-pipe descriptors
            os.write(_fd, line[written:])
    except OSError as exc:
        _warn("cannot write to %s=%d (%s); probe disabled" % (ENV_VAR, _fd, exc))
        _fd = None


def _check_name(name):
    if not isinstance(name, str) or not 0 < len(name) <= _MAX_NAME or not _NAME_CHARS.issuperset(name):
        raise ValueError(
            "ttfb_probe: phase name must be 1-%d characters from [A-Za-z0-9_.-], got %r" % (_MAX_NAME, name)
        )


def phase(name):
    """Mark the beginning of phase `name` (which ends the previous phase)."""
    _check_name(name)
    _write(b"phase " + name.encode("ascii") + b"\n")


def first_batch():
    """Mark the moment the first batch enters the model.  Later calls do nothing."""
    global _first_batch_sent
    if _first_batch_sent:
        return
    _first_batch_sent = True
    _write(b"first_batch\n")
