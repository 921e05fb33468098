"""The server as an attacker meets it (issue 13): hostile requests against the real server on a
real database, each refused with the right status and a JSON error, and the server still
serving afterwards. Workers are played by hand here, so that forged leases can be tried."""
import json
import os
import re
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Lab, SOURCE  # noqa: E402


def raw_request(port, data, timeout=10):
    """Sends raw bytes, returns everything the server answers before it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            out += chunk
    return out


def status_and_json(answer):
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.1 ") else 0
    return status, json.loads(body) if body.strip() else None


class HostileRequests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lab = Lab(workers=0).__enter__()
        cls.port = int(cls.lab.url.rsplit(":", 1)[1])

    @classmethod
    def tearDownClass(cls):
        cls.lab.__exit__(*sys.exc_info())

    def assert_alive(self):
        self.assertEqual(self.lab.api("GET", "/healthz")[0], 200, "the server must still answer")
        self.assertIsNone(self.lab.procs["server"].poll(), "the server process died")

    def test_a_path_that_is_not_utf8_gets_400_not_a_dead_server(self):
        # Issue 13's first finding: this request ended the process with std::terminate.
        for target in (b"/%ff", b"/api/v1/workflows/%C3", b"/api/v1/experiments?repo=%ff", b"/%00"):
            answer = raw_request(self.port, b"POST " + target + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                                 b"Connection: close\r\n\r\n")
            status, body = status_and_json(answer)
            self.assertEqual(status, 400, (target, answer[:300]))
            self.assertEqual(body["error"]["code"], "invalid_argument")
        self.assert_alive()

    def test_encoded_path_traversal_serves_nothing_outside_web(self):
        for target in ("/assets/%2e%2e/%2e%2e/CMakeLists.txt", "/assets/..%2f..%2fCMakeLists.txt",
                       "/vendor/%2E%2E/%2E%2E/package.json", "/assets/%2e%2e%5c%2e%2e%5cREADME.md"):
            status, body = self.lab.api("GET", target)
            self.assertIn(status, (400, 404), target)
            self.assertNotIn("cmake_minimum_required", json.dumps(body))
        self.assert_alive()

    def test_oversized_deep_and_malformed_bodies_are_refused(self):
        tok = self.lab.submit_token
        big = json.dumps({"repo": "example", "diff": "x" * (2 * 1024 * 1024)}).encode()
        status, body = self.lab.api("POST", "/api/v1/experiments", raw=big, token=tok)
        self.assertEqual(status, 413, body)
        deep = ("[" * 100000 + "]" * 100000).encode()
        status, body = self.lab.api("POST", "/api/v1/experiments", raw=deep, token=tok)
        self.assertEqual(status, 400, body)
        self.assertIn("nested deeper", body["error"]["message"])
        deep_object = ('{"a":' * 5000 + "1" + "}" * 5000).encode()
        self.assertEqual(self.lab.api("POST", "/api/v1/releases", raw=deep_object, token=tok)[0], 400)
        self.assertEqual(self.lab.api("POST", "/api/v1/experiments", raw=b"\xff\xfe{", token=tok)[0], 400)
        long_field = {"repo": "example", "diff": "--- a\n", "title": "t" * 100000}
        status, body = self.lab.api("POST", "/api/v1/experiments", long_field, token=tok)
        self.assertEqual(status, 400)
        self.assertIn("'title' is longer than", body["error"]["message"])
        self.assert_alive()

    def test_option_like_refs_are_unknown_revisions(self):
        marker = os.path.join(self.lab.tmp, "pwned")
        for ref in ("--upload-pack=touch " + marker, "-c", "--output=" + marker, "--all"):
            status, body = self.lab.api("POST", "/api/v1/experiments",
                                        {"repo": "example", "base": ref, "candidate": "main"}, token=self.lab.submit_token)
            self.assertEqual(status, 400, (ref, body))
            status, body = self.lab.api("POST", "/api/v1/bisections",
                                        {"repo": "example", "workflow": "example-train", "good": ref, "bad": "main"},
                                        token=self.lab.submit_token)
            self.assertEqual(status, 400, (ref, body))
        self.assertFalse(os.path.exists(marker), "a ref ran a command")
        self.assert_alive()

    def test_every_write_needs_a_token_with_its_scope(self):
        with open(os.path.join(SOURCE, "docs", "openapi.json")) as f:
            spec = json.load(f)
        other = {"submit": self.lab.worker_token, "worker": self.lab.submit_token, "admin": self.lab.submit_token}
        checked = 0
        for path, ops in spec["paths"].items():
            for method, op in ops.items():
                scope = op.get("x-ttfb-scope") if isinstance(op, dict) else None
                if not scope:
                    continue
                concrete = path.replace("{id}", "1").replace("{name}", "example-train")
                body = {"worker": {"name": "w1"}}
                for token, expected in ((None, 401), ("ttfb_" + "0" * 64, 401), (other[scope], 403)):
                    status, answer = self.lab.api(method.upper(), concrete, body, token=token)
                    self.assertEqual(status, expected, f"{method.upper()} {concrete} with {token and token[:9]}: {answer}")
                    self.assertIn(answer["error"]["code"], ("unauthenticated", "permission_denied"))
                checked += 1
        self.assertGreaterEqual(checked, 10, "every scoped operation of docs/openapi.json was tried")

    def test_reads_need_a_token_when_reads_are_closed(self):
        self.lab.stop_server()
        with open(self.lab.config) as f:
            text = f.read()
        with open(self.lab.config, "w") as f:
            f.write(text.replace("open_reads = true", "open_reads = false"))
        try:
            self.lab.start_server()
            with open(os.path.join(SOURCE, "docs", "openapi.json")) as f:
                spec = json.load(f)
            for path, ops in spec["paths"].items():
                op = ops.get("get")
                if not op or not path.startswith("/api/v1/") or path == "/api/v1/openapi.json":
                    continue
                concrete = path.replace("{id}", "1").replace("{name}", "example-train")
                status, answer = self.lab.api("GET", concrete)
                self.assertEqual(status, 401, f"GET {concrete} without a token: {answer}")
                status, answer = self.lab.api("GET", concrete, token=self.lab.submit_token)
                self.assertIn(status, (200, 404), f"GET {concrete} with a token: {answer}")
        finally:
            self.lab.stop_server()
            with open(self.lab.config, "w") as f:
                f.write(text)
            self.lab.start_server()

    def test_made_up_methods_add_no_metric_series(self):
        for i in range(20):
            raw_request(self.port, f"M{i}X /api/v1/repos HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        status, metrics = self.lab.api("GET", "/metrics")
        self.assertEqual(status, 200)
        methods = set(re.findall(r'method="([^"]*)"', metrics))
        self.assertTrue(methods <= {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "OTHER"}, methods)
        self.assertIn("OTHER", methods)

    def test_slow_clients_cannot_starve_the_server(self):
        # Connections that send half a request line and then nothing: more than one client's share
        # (64) are closed at once, and the server keeps answering others meanwhile.
        held = []
        try:
            for _ in range(70):
                s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                s.sendall(b"GET /healthz HT")
                held.append(s)
            time.sleep(0.5)
            closed = 0
            for s in held:
                s.settimeout(0.05)
                try:
                    if s.recv(1) == b"":
                        closed += 1
                except socket.timeout:
                    pass
                except ConnectionResetError:
                    closed += 1
            self.assertGreaterEqual(closed, 6, "connections beyond a client's share must be closed")
        finally:
            for s in held:
                s.close()
        time.sleep(0.3)
        self.assert_alive()


class ForgedLeases(unittest.TestCase):
    """Workers with identities: a worker is its token, and a lease is a secret."""

    @classmethod
    def setUpClass(cls):
        cls.lab = Lab(workers=0).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.lab.__exit__(*sys.exc_info())

    def claim(self, token, name):
        status, body = self.lab.api("POST", "/api/v1/worker/claim", {"worker": {"name": name}}, token=token)
        return status, body

    def test_a_worker_is_its_token_and_a_lease_is_fenced(self):
        lab = self.lab
        w1, w2 = lab.token_of_worker("w1"), lab.token_of_worker("w2")
        exp = lab.submit(candidate="main", runs=2)
        # w2's token cannot claim as w1.
        status, body = self.claim(w2, "w1")
        self.assertEqual(status, 403, body)
        self.assertIn("belongs to worker 'w2'", body["error"]["message"])
        status, body = self.claim(w1, "w1")
        self.assertEqual(status, 200, body)
        job = body["job"]
        lease = {"lease_id": job["lease_id"], "attempt": job["attempt"]}
        path = f"/api/v1/worker/jobs/{job['id']}"
        # The queue says who holds the job, never the lease id.
        status, q = lab.api("GET", "/api/v1/jobs")
        self.assertNotIn(job["lease_id"], json.dumps(q))

        sample = {"run_index": job["schedule"][-1]["run_index"], "ttfb_ms": 1.0}
        forged = [
            (w2, {"worker": "w2", **lease}),                         # another worker with the stolen id
            (w1, {"worker": "w1", "lease_id": "0" * 32, "attempt": job["attempt"]}),  # a second w1 process
            (w1, {"worker": "w1", "lease_id": job["lease_id"], "attempt": job["attempt"] + 1}),
        ]
        for token, who in forged:
            for action, extra in (("heartbeat", {"done": 1}), ("samples", {"samples": [sample]}),
                                  ("complete", {}), ("fail", {"error": {"code": "x", "message": "forged"}})):
                status, body = lab.api("POST", f"{path}/{action}", {**who, **extra}, token=token)
                self.assertEqual(status, 409, (action, who, body))
                self.assertNotIn(job["lease_id"], json.dumps(body))
        # The body cannot name another worker either, with the right lease.
        status, body = lab.api("POST", f"{path}/heartbeat", {"worker": "w2", **lease}, token=w1)
        self.assertEqual(status, 403, body)
        status, body = lab.api("POST", f"{path}/heartbeat", {**lease}, token=w1)
        self.assertEqual(status, 200, "the lease holder may write, with or without naming itself")
        status, samples = lab.api("GET", f"/api/v1/experiments/{exp}/samples")
        self.assertEqual(samples["samples"], [], "no forged sample was stored")
        # The job is still the holder's to fail.
        status, body = lab.api("POST", f"{path}/fail", {**lease, "retryable": False,
                                                        "error": {"code": "internal", "message": "done testing"}},
                               token=w1)
        self.assertEqual(status, 200, body)

    def test_only_the_submitter_or_an_admin_cancels(self):
        lab = self.lab
        exp = lab.submit(candidate="main", runs=2)
        other = lab._token("another-submitter", "submit")
        status, body = lab.api("POST", f"/api/v1/experiments/{exp}/cancel", token=other)
        self.assertEqual(status, 403, body)
        self.assertEqual(lab.api("GET", f"/api/v1/experiments/{exp}")[1]["status"], "queued")
        status, body = lab.api("POST", f"/api/v1/experiments/{exp}/cancel", token=lab.admin_token)
        self.assertEqual(status, 200, body)


if __name__ == "__main__":
    unittest.main(verbosity=2)
