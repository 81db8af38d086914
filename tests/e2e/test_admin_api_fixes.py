"""Control API edge cases, end to end: HEAD of a watch stream, out-of-range numbers, duplicate
JSON keys, invalid UTF-8 in an echoed path, the Bearer scheme in any case, and IPv6 listen
addresses in the start-up log."""

import os
import re
import socket
import time
import unittest

import harness
from harness import DEADLINE, E2ETestCase, make_config, route

NAME = "canary-demo"
STEPS = [{"setWeight": 20}, {"pause": {}}]


def read_until_close(sock, timeout):
    """Everything the server sends until it closes; AssertionError if it stays open."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            b = sock.recv(65536)
        except socket.timeout:
            break
        if not b:
            return data
        data += b
    raise AssertionError(f"the connection stayed open; got {data[:300]!r}")


class AdminApiFixesTest(E2ETestCase):

    def setUp(self):
        super().setUp()
        self.token_file = self.write("token", "s3cret\n")
        self.proxy = self.demo_proxy(steps=STEPS, token_file=self.token_file)
        self.auth = {"Authorization": "Bearer s3cret"}

    def test_head_of_a_watch_stream_is_the_head_only(self):
        for path in ("/api/v1/watch", f"/api/v1/rollouts/{NAME}/watch"):
            with socket.create_connection(("127.0.0.1", self.proxy.admin_port),
                                          timeout=DEADLINE) as s:
                s.sendall(f"HEAD {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
                raw = read_until_close(s, DEADLINE)
            head, sep, body = raw.partition(b"\r\n\r\n")
            self.assertTrue(sep, raw)
            self.assertTrue(head.startswith(b"HTTP/1.1 200 "), raw)
            self.assertIn(b"text/event-stream", head)
            self.assertEqual(body, b"", "HEAD has no content (RFC 9110 §9.3.2)")

    def test_a_huge_weight_is_reported_as_given(self):
        self.proxy.op(NAME, "upstream", {"upstream": "green"}, headers=self.auth)
        r = self.proxy.admin("PUT", f"/api/v1/rollouts/{NAME}/weight",
                             '{"weight": 18446744073709551615}',
                             {**self.auth, "Content-Type": "application/json"})
        body = self.assertApiError(r, 400)
        self.assertIn("weight 18446744073709551615 is outside 0..100", body["error"])
        self.assertEqual(self.proxy.status()["weight"], 20)

    def test_duplicate_keys_are_refused(self):
        self.proxy.op(NAME, "upstream", {"upstream": "green"}, headers=self.auth)
        r = self.proxy.admin("PUT", f"/api/v1/rollouts/{NAME}/weight",
                             '{"weight": 90, "weight": 30}',
                             {**self.auth, "Content-Type": "application/json"})
        body = self.assertApiError(r, 400)
        self.assertIn('duplicate key "weight"', body["error"])
        self.assertEqual(self.proxy.status()["weight"], 20, "nothing applied")
        r = self.proxy.admin("PUT", f"/api/v1/rollouts/{NAME}/upstream",
                             '{"upstream": "blue", "upstream": "green"}',
                             {**self.auth, "Content-Type": "application/json"})
        self.assertIn('duplicate key "upstream"', self.assertApiError(r, 400)["error"])

    def test_a_404_is_valid_utf8_json(self):
        with socket.create_connection(("127.0.0.1", self.proxy.admin_port),
                                      timeout=DEADLINE) as s:
            s.sendall(b"GET /api/v1/\xff\xfe\xc3 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Connection: close\r\n\r\n")
            raw = read_until_close(s, DEADLINE)
        r = harness.parse_response(raw)
        self.assertEqual(r.status, 404, raw)
        text = r.body.decode("utf-8")  # raises on invalid UTF-8
        body = __import__("json").loads(text)
        self.assertIn("no such endpoint: /api/v1/\ufffd\ufffd\ufffd", body["error"])

    def test_the_bearer_scheme_is_case_insensitive(self):
        for scheme in ("bearer", "BEARER", "Bearer"):
            r = self.proxy.op(NAME, "upstream", {"upstream": "green"},
                              headers={"Authorization": f"{scheme} s3cret"}, expect=None)
            self.assertEqual(r.status, 200, f"{scheme}: {r!r}")
            self.proxy.op(NAME, "abort", headers=self.auth)
            self.proxy.op(NAME, "upstream", {"upstream": "blue"}, headers=self.auth)
        for wrong in ("bearer wrong", "Basic s3cret", "bearers3cret", "bearer "):
            r = self.proxy.op(NAME, "promote", headers={"Authorization": wrong}, expect=None)
            self.assertEqual(r.status, 401, f"{wrong!r}: {r!r}")


class Ipv6ListenLogTest(E2ETestCase):

    def test_ipv6_listen_addresses_are_logged_in_brackets(self):
        try:
            with socket.socket(socket.AF_INET6) as probe:
                probe.bind(("::1", 0))
        except OSError:
            self.skipTest("no IPv6 loopback here")
        blue = self.start_backend("blue")
        cfg = make_config({"blue": blue.endpoint}, [route(steps=[])])
        cfg["listen"] = "[::1]:0"
        cfg["admin"]["listen"] = "[::1]:0"
        path = self.write("c.yaml", harness.to_yaml(cfg) + "\n")
        p = harness.Process([harness.binary("canary-proxy"), "--config", path], cwd=self.tmp)
        self.addCleanup(p.kill)
        m = p.wait_for_log(r"proxy listening on (\S+) \(")
        self.assertRegex(m.group(1), r"^\[::1\]:\d+$")
        m = p.wait_for_log(r"admin listening on (\S+)")
        self.assertRegex(m.group(1), r"^\[::1\]:\d+$")


if __name__ == "__main__":
    unittest.main()
