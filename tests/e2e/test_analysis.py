"""Automated analysis end to end (docs/analysis.md): the real canary-proxy judges a canary from its
own counters. A faulty canary is aborted by itself under a bounded load and traffic goes back to
stable; a healthy one completes unattended; a canary without traffic pauses instead of
promoting; a dry run measures but never acts; a web provider (a Python server here) gates an
inline analysis step; kill -9 mid-run resumes the run's counts. Backends are Python servers in
this process that answer 500 for a chosen share of requests (every k-th one, deterministic)."""

import http.server
import json
import threading
import time

from harness import E2ETestCase, DataClient, make_config, poll

NAME = "checkout"
# Every load loop is bounded in count and in time.
MAX_REQUESTS = 6000
MAX_SECONDS = 40.0


class ColorServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, color, fail_every=0, body=None):
        self.color = color
        self.fail_every = fail_every  # 0: never; k: every k-th request is a 500
        self.body = body              # a fixed JSON answer (a web provider), or None
        self.count = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.server_address[1]

    def stop(self):
        self.shutdown()
        self.server_close()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        srv = self.server
        with srv.lock:
            srv.count += 1
            n = srv.count
        if srv.body is not None:
            text = srv.body() if callable(srv.body) else srv.body
            code = 200
        else:
            code = 500 if srv.fail_every and n % srv.fail_every == 0 else 200
            text = srv.color
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def analysis(metrics, **kw):
    a = {"interval": "500ms", "inconclusive_limit": 1000, "metrics": metrics}
    a.update(kw)
    return a


ERRORS = {"name": "errors", "builtin": "error_rate_vs_stable", "min_requests": 30}


class AnalysisTest(E2ETestCase):

    def server(self, color, fail_every=0, body=None):
        s = ColorServer(color, fail_every, body)
        self.addCleanup(s.stop)
        return s

    def proxy_for(self, blue, green, steps, an):
        r = {"name": NAME, "path_prefix": "/", "upstream": "blue", "steps": steps,
             "analysis": an}
        cfg = make_config({"blue": blue.address, "green": green.address}, [r])
        return self.start_proxy(cfg)

    def load_until(self, proxy, done, what):
        """GETs through the proxy until done(status) or the bounds; returns the status."""
        client = DataClient(proxy.port)
        self.addCleanup(client.close)
        start = time.monotonic()
        for i in range(MAX_REQUESTS):
            client.request("GET", "/")
            if i % 50 == 0:
                s = proxy.status(NAME)
                if done(s):
                    return s
            if time.monotonic() - start > MAX_SECONDS:
                break
        s = proxy.status(NAME)
        self.assertTrue(done(s), f"{what} not reached under load: {json.dumps(s, indent=1)}")
        return s

    def set_upstream(self, proxy, upstream="green"):
        proxy.op(NAME, "upstream", {"upstream": upstream})

    def test_faulty_canary_is_aborted_and_traffic_returns_to_stable(self):
        blue = self.server("blue")
        green = self.server("green", fail_every=2)  # 50 % errors
        proxy = self.proxy_for(blue, green, [{"setWeight": 50}, {"pause": {}}],
                               analysis([ERRORS]))
        self.set_upstream(proxy)
        s = self.load_until(proxy, lambda s: s["phase"] == "Degraded", "an abort")
        self.assertTrue(s["message"].startswith("AnalysisFailed: errors"), s["message"])
        self.assertEqual(s["actual_weight"], 0)
        self.assertEqual(s["analysis"]["metrics"][0]["phase"], "Failed")
        last = proxy.events(NAME)["events"][-1]
        self.assertEqual(last["cause"], "analysis")
        self.assertEqual(last["to"], "Degraded")
        client = DataClient(proxy.port)
        self.addCleanup(client.close)
        bodies = {client.request("GET", "/").text for _ in range(50)}
        self.assertEqual(bodies, {"blue"})
        text = proxy.admin("GET", "/metrics").text
        self.assertRegex(text, r'canary_proxy_analysis_measurements_total\{[^}]*metric="errors"'
                               r'[^}]*phase="Failed"[^}]*\} 1')
        history = proxy.admin("GET", f"/api/v1/rollouts/{NAME}/analysis").json()
        self.assertTrue(any(m["phase"] == "Failed" for m in history["measurements"]))

    def test_healthy_canary_completes_unattended(self):
        blue = self.server("blue")
        green = self.server("green")
        steps = [{"setWeight": 50}, {"pause": {"duration": "1s"}},
                 {"analysis": {"duration": "1s"}}]
        proxy = self.proxy_for(blue, green, steps, analysis([ERRORS]))
        self.set_upstream(proxy)
        s = self.load_until(proxy, lambda s: s["phase"] == "Healthy", "completion")
        self.assertEqual(s["stable"], "green")
        self.assertIsNone(s["canary"])
        self.assertEqual(s["analysis"]["phase"], "Successful")

    def test_no_traffic_pauses_instead_of_promoting(self):
        blue = self.server("blue")
        green = self.server("green")
        proxy = self.proxy_for(blue, green, [{"setWeight": 50}, {"pause": {"duration": "1s"}}],
                               analysis([ERRORS], inconclusive_limit=2))
        self.set_upstream(proxy)
        s = proxy.wait_status(lambda s: s["paused_by"] == "analysis", NAME, timeout=20,
                              what="a pause by analysis")
        self.assertEqual(s["phase"], "Paused")
        self.assertEqual(s["step"], 1)
        self.assertEqual(s["canary"], "green")
        self.assertEqual(s["analysis"]["metrics"][0]["phase"], "Inconclusive")
        events = proxy.events(NAME)["events"]
        self.assertFalse(any("completed" in e["message"] and e["step"] >= 2 for e in events))
        self.assertEqual(events[-1]["cause"], "analysis")

    def test_dry_run_measures_but_never_acts(self):
        blue = self.server("blue")
        green = self.server("green", fail_every=2)
        proxy = self.proxy_for(blue, green, [{"setWeight": 50}, {"pause": {}}],
                               analysis([ERRORS], dry_run=True))
        self.set_upstream(proxy)
        s = self.load_until(proxy, lambda s: s["analysis"]["metrics"][0]["failed"] >= 2,
                            "two Failed measurements")
        self.assertEqual(s["phase"], "Paused")
        self.assertEqual(s["paused_by"], "step")
        self.assertEqual(s["analysis"]["phase"], "DryRun")
        self.assertEqual(s["actual_weight"], 50)

    def test_kill9_mid_run_resumes_the_counts(self):
        blue = self.server("blue")
        green = self.server("green")
        proxy = self.proxy_for(blue, green, [{"setWeight": 50}, {"pause": {}}],
                               analysis([ERRORS]))
        self.set_upstream(proxy)
        s = self.load_until(proxy, lambda s: s["analysis"]["metrics"][0]["successful"] >= 2,
                            "two Successful measurements")
        run = s["analysis"]["run"]
        before = s["analysis"]["metrics"][0]["successful"]
        proxy.restart(hard=True)
        s = proxy.status(NAME)
        self.assertEqual(s["analysis"]["run"], run)
        self.assertGreaterEqual(s["analysis"]["metrics"][0]["successful"], before)
        s = self.load_until(
            proxy, lambda s: s["analysis"]["metrics"][0]["successful"] >= before + 1,
            "one more Successful measurement")
        self.assertEqual(s["analysis"]["run"], run)


if __name__ == "__main__":
    import unittest
    unittest.main()
