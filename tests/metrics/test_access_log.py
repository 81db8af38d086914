"""The access log end to end (see `access_log` in docs/config-reference.md): N requests through the
real proxy give N JSON lines with the variant, upstream, endpoint and status each request really
got; local replies are logged too; the text format; stdout ("-"); reopening on SIGUSR1 after a
rotation. Lines are buffered per worker and flushed within a second, so every check polls."""

import json
import os
import re
import signal
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

import harness  # noqa: E402

ROUTE = "canary-demo"
STEPS = [{"setWeight": 20}, {"pause": {}}]
RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
FLUSH_WAIT = 5.0  # the workers flush every second


def read_lines(path):
    try:
        with open(path, encoding="utf-8") as f:
            return [l for l in f.read().split("\n") if l]
    except FileNotFoundError:
        return []


class AccessLogTest(harness.E2ETestCase):
    def start(self, access_log, workers=1):
        blue, green = self.blue_green()
        self.endpoints = {"blue": blue.endpoint, "green": green.endpoint}
        proxy = self.start_proxy(harness.make_config(
            dict(self.endpoints), [harness.route(ROUTE, steps=STEPS,
                                                 canary={"by_header": "X-Canary"})],
            workers=workers, extra={"access_log": access_log}))
        proxy.op(ROUTE, "upstream", {"upstream": "green"})
        return proxy

    def traffic(self, proxy, n_weight, n_header):
        """(colour, status) of each request, in order."""
        sent = []
        c = harness.DataClient(proxy.port)
        try:
            for i in range(n_weight + n_header):
                headers = {"X-Canary": "always"} if i >= n_weight else {}
                r = c.request("GET", f"/color?i={i}", headers)
                sent.append((json.loads(r.body), r.status))
        finally:
            c.close()
        return sent

    def wait_lines(self, path, n):
        return harness.poll(lambda: (lambda ls: ls if len(ls) >= n else None)(read_lines(path)),
                            timeout=FLUSH_WAIT, interval=0.1,
                            what=f"{n} lines in {path}")

    def check_json_lines(self, lines, sent):
        self.assertEqual(len(lines), len(sent), "one line per request")
        for i, (line, (colour, status)) in enumerate(zip(lines, sent)):
            rec = json.loads(line)
            self.assertRegex(rec["time"], RFC3339_MS)
            self.assertEqual(rec["method"], "GET")
            self.assertEqual(rec["path"], f"/color?i={i}")
            self.assertEqual(rec["status"], status)
            self.assertEqual(rec["route"], ROUTE)
            self.assertEqual(rec["variant"], "canary" if colour == "green" else "stable", rec)
            self.assertEqual(rec["upstream"], colour)
            self.assertEqual(rec["endpoint"], self.endpoints[colour])
            self.assertIn(rec["reason"], ("weight", "header"))
            self.assertFalse(rec["local"])
            self.assertGreater(rec["bytes_sent"], 0)
            self.assertGreaterEqual(rec["duration_ms"], rec["upstream_ms"])
            self.assertEqual(rec["client"], "127.0.0.1")

    def test_one_json_line_per_request(self):
        proxy = self.start({"enabled": True, "path": "access.log", "format": "json"})
        sent = self.traffic(proxy, 40, 10)
        self.assertEqual(sum(1 for c, _ in sent[:40] if c == "green"), 8)
        path = self.path("access.log")
        lines = self.wait_lines(path, len(sent))
        self.check_json_lines(lines, sent)
        reasons = [json.loads(l)["reason"] for l in lines]
        self.assertEqual(reasons, ["weight"] * 40 + ["header"] * 10)

        # A reply the proxy makes itself (no Host: 400) is logged as local.
        r = harness.raw_exchange(proxy.port, b"GET /x HTTP/1.1\r\n\r\n")
        self.assertEqual(r.status, 400)
        lines = self.wait_lines(path, len(sent) + 1)
        rec = json.loads(lines[-1])
        self.assertEqual((rec["status"], rec["local"]), (400, True))

    def test_text_format(self):
        proxy = self.start({"enabled": True, "path": "access.log", "format": "text"})
        sent = self.traffic(proxy, 5, 0)
        lines = self.wait_lines(self.path("access.log"), len(sent))
        self.assertEqual(len(lines), 5)
        for i, line in enumerate(lines):
            self.assertRegex(line, r'^127\.0\.0\.1 - - \[\d{4}-\d\d-\d\dT[\d:.]+Z\] '
                                   rf'"GET /color\?i={i} HTTP/1\.1" 200 \d+ route={ROUTE} '
                                   r'variant=(stable|canary) ')

    def test_stdout(self):
        proxy = self.start({"enabled": True, "path": "-", "format": "json"})
        sent = self.traffic(proxy, 10, 0)

        def json_lines():
            ls = [l for l in proxy.process.stdout.lines if l.startswith("{")]
            return ls if len(ls) >= len(sent) else None

        lines = harness.poll(json_lines, timeout=FLUSH_WAIT, interval=0.1,
                             what="access lines on stdout")
        self.check_json_lines(lines, sent)

    def test_reopen_on_sigusr1(self):
        proxy = self.start({"enabled": True, "path": "access.log", "format": "json"}, workers=2)
        path = self.path("access.log")
        sent = self.traffic(proxy, 10, 0)
        self.wait_lines(path, len(sent))
        os.rename(path, path + ".1")
        mark = proxy.process.log_mark()
        proxy.process.signal(signal.SIGUSR1)
        proxy.process.wait_for_log(r"SIGUSR1", mark=mark)
        harness.poll(lambda: os.path.exists(path), timeout=FLUSH_WAIT,
                     what="access.log re-created after SIGUSR1")
        more = self.traffic(proxy, 7, 0)
        self.assertEqual(len(self.wait_lines(path, len(more))), len(more))
        self.assertEqual(len(read_lines(path + ".1")), len(sent))
        self.assertTrue(proxy.process.alive())


if __name__ == "__main__":
    unittest.main()
