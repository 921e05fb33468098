#!/usr/bin/env python3
"""A local receiver for ttfb-lab alerts, for tests and the demo: a webhook endpoint and an SMTP
server that append what they receive to a JSON-lines file. Python 3 standard library only.

    python3 alert_sink.py --out FILE [--http-port 0] [--smtp-port 0]
                          [--fail-first N] [--fail-status 503] [--delay SECONDS]

On start it prints one line, {"http_port": P, "smtp_port": Q}, and flushes (port 0: the OS picks).
Every received message is one line of FILE, written and flushed before anything else happens:

    {"channel": "webhook", "delivery": "<X-TTFB-Lab-Delivery>", "path": "/x", "headers": {...}, "body": {...}}
    {"channel": "webhook", "rejected": true, "status": 503, ...}   # the first N requests (--fail-first)
    {"channel": "email", "from": "a@b", "to": ["c@d"], "auth_user": "u" | null, "data": "<the message>"}

--fail-first N answers the first N webhook requests with --fail-status (default 503) instead of
200, recording them with "rejected": true so a test can count attempts. --delay sleeps before
answering each webhook request, after recording it (to stop the server mid-delivery).
SIGTERM or SIGINT ends it cleanly (exit status 0).
"""

import argparse
import base64
import http.server
import json
import signal
import socketserver
import sys
import threading
import time


class Recorder:
    """Appends one JSON line per event to the output file, flushed at once."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()

    def write(self, record):
        line = json.dumps(record, sort_keys=True) + "\n"
        with self.lock:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line)
                f.flush()


def make_http_handler(recorder, fail_first, fail_status, delay):
    state = {"requests": 0}
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "ttfb-lab-alert-sink"

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length > 0 else b""
            with lock:
                state["requests"] += 1
                rejected = state["requests"] <= fail_first
            record = {
                "channel": "webhook",
                "delivery": self.headers.get("X-TTFB-Lab-Delivery"),
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
            }
            try:
                record["body"] = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                record["body"] = raw.decode("utf-8", "replace")
                record["invalid_json"] = True
            if rejected:
                record["rejected"] = True
                record["status"] = fail_status
            recorder.write(record)
            if delay > 0:
                time.sleep(delay)
            status = fail_status if rejected else 200
            answer = b'{"ok": false}' if rejected else b'{"ok": true}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, fmt, *args):  # quiet: the output file is the record
            pass

    return Handler


class SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) for libcurl: EHLO/HELO, AUTH PLAIN, MAIL, RCPT, DATA, RSET,
    NOOP, QUIT. smtpd left the standard library in Python 3.12, so it is written out here."""

    timeout = 30

    def reply(self, line):
        self.wfile.write((line + "\r\n").encode("utf-8"))
        self.wfile.flush()

    def readline(self):
        line = self.rfile.readline(65536)
        if not line:
            return None
        return line.decode("utf-8", "replace").rstrip("\r\n")

    def reset(self):
        self.mail_from = None
        self.rcpt = []

    def handle(self):
        self.reset()
        self.auth_user = None
        self.reply("220 ttfb-lab-alert-sink ESMTP")
        while True:
            line = self.readline()
            if line is None:
                return
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                self.reply("250-ttfb-lab-alert-sink")
                self.reply("250-8BITMIME")
                self.reply("250 AUTH PLAIN")
            elif verb == "HELO":
                self.reply("250 ttfb-lab-alert-sink")
            elif verb == "AUTH":
                mechanism, _, initial = arg.partition(" ")
                if mechanism.upper() != "PLAIN":
                    self.reply("504 only AUTH PLAIN")
                    continue
                if not initial:
                    self.reply("334 ")
                    initial = self.readline() or ""
                try:
                    parts = base64.b64decode(initial).split(b"\0")
                    self.auth_user = parts[1].decode("utf-8", "replace") if len(parts) >= 3 else None
                except (ValueError, IndexError):
                    self.reply("501 bad AUTH PLAIN response")
                    continue
                self.reply("235 authenticated")
            elif verb == "MAIL":
                self.reset()
                self.mail_from = address_of(arg)
                self.reply("250 OK")
            elif verb == "RCPT":
                if self.mail_from is None:
                    self.reply("503 MAIL first")
                    continue
                self.rcpt.append(address_of(arg))
                self.reply("250 OK")
            elif verb == "DATA":
                if not self.rcpt:
                    self.reply("503 RCPT first")
                    continue
                self.reply("354 end with <CRLF>.<CRLF>")
                lines = []
                while True:
                    raw = self.rfile.readline(1 << 20)
                    if not raw:
                        return
                    text = raw.decode("utf-8", "replace")
                    if text in (".\r\n", ".\n"):
                        break
                    if text.startswith("."):
                        text = text[1:]  # dot-stuffing (RFC 5321 4.5.2)
                    lines.append(text)
                self.server.recorder.write({
                    "channel": "email",
                    "from": self.mail_from,
                    "to": self.rcpt,
                    "auth_user": self.auth_user,
                    "data": "".join(lines),
                })
                self.reset()
                self.reply("250 OK: queued")
            elif verb == "RSET":
                self.reset()
                self.reply("250 OK")
            elif verb == "NOOP":
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 command not implemented")


def address_of(arg):
    """'FROM:<a@b> SIZE=10' -> 'a@b'."""
    _, _, rest = arg.partition(":")
    rest = rest.strip()
    if rest.startswith("<"):
        return rest[1:rest.find(">")] if ">" in rest else rest[1:]
    return rest.split(" ")[0]


class ThreadingSmtpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="JSON-lines file to append received alerts to")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--http-port", type=int, default=0)
    parser.add_argument("--smtp-port", type=int, default=0)
    parser.add_argument("--fail-first", type=int, default=0, help="answer the first N webhook requests with --fail-status")
    parser.add_argument("--fail-status", type=int, default=503)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to wait before answering a webhook request")
    args = parser.parse_args()

    recorder = Recorder(args.out)
    http_server = http.server.ThreadingHTTPServer(
        (args.host, args.http_port), make_http_handler(recorder, args.fail_first, args.fail_status, args.delay))
    http_server.daemon_threads = True
    smtp_server = ThreadingSmtpServer((args.host, args.smtp_port), SmtpHandler)
    smtp_server.recorder = recorder

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
               for s in (http_server, smtp_server)]
    for t in threads:
        t.start()
    print(json.dumps({"http_port": http_server.server_address[1], "smtp_port": smtp_server.server_address[1]}),
          flush=True)
    while not stop.wait(0.2):
        pass
    for s in (http_server, smtp_server):
        s.shutdown()
        s.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
