"""Passive (outlier) and active (health_check) upstream health, end to end."""
import http.server
import threading
import unittest

from harness import E2ETestCase, make_config, route, poll


class FakeBackend:
    """A tiny HTTP/1.1 server whose /healthz answer the test flips; counts /color requests."""

    def __init__(self, name):
        self.healthy = True
        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                if self.path == "/healthz":
                    code = 200 if outer.healthy else 503
                    body = b"ok\n" if outer.healthy else b"sick\n"
                else:
                    outer.requests += 1
                    code, body = 200, f'"{name}"'.encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class OutlierTest(E2ETestCase):

    def proxy_with(self, endpoints, outlier):
        cfg = make_config({"blue": endpoints}, [route(steps=[])])
        cfg["upstreams"]["blue"]["outlier"] = outlier
        return self.start_proxy(cfg)

    def test_consecutive_5xx_eject_the_endpoint_then_it_returns(self):
        good = self.start_backend("blue")
        bad = self.start_backend("red", ["--error-rate", "1"])
        proxy = self.proxy_with([good.endpoint, bad.endpoint],
                                {"consecutive_failures": 3, "base_ejection": "1s",
                                 "max_ejected_percent": 50})
        codes = [proxy.get("/color").status for _ in range(20)]
        # Round-robin: the bad endpoint answers every other request until its third 500.
        self.assertEqual(codes.count(500), 3, codes)
        self.assertEqual(codes[6:], [200] * 14, codes)
        proxy.process.wait_for_log(r"outlier: upstream blue endpoint 127\.0\.0\.1:\d+ ejected")
        metrics = proxy.admin("GET", "/metrics").text
        self.assertRegex(metrics, r'canary_proxy_upstream_ejections_total\{upstream="blue"\} 1')
        # After base_ejection it gets traffic again (and is ejected again, for longer).
        poll(lambda: proxy.get("/color").status == 500, timeout=5,
             what="the ejected endpoint back in rotation")

    def test_never_ejects_more_than_max_ejected_percent(self):
        bad1 = self.start_backend("red", ["--error-rate", "1"])
        bad2 = self.start_backend("red", ["--error-rate", "1"])
        proxy = self.proxy_with([bad1.endpoint, bad2.endpoint],
                                {"consecutive_failures": 2, "base_ejection": "30s",
                                 "max_ejected_percent": 50})
        codes = [proxy.get("/color").status for _ in range(20)]
        # One of the two is ejected; the other keeps answering (503 would mean both out).
        self.assertEqual(set(codes), {500}, codes)
        self.assertEqual(proxy.logs().count("ejected for"), 1, proxy.logs())

    def test_connect_failures_count_and_eject(self):
        good = self.start_backend("blue")
        from harness import closed_port
        dead = f"127.0.0.1:{closed_port()}"
        proxy = self.proxy_with([good.endpoint, dead],
                                {"consecutive_failures": 1, "base_ejection": "30s",
                                 "max_ejected_percent": 50})
        codes = [proxy.get("/color").status for _ in range(10)]
        self.assertEqual(codes, [200] * 10)  # the refused connect is retried on the other one
        proxy.process.wait_for_log(r"ejected for 30000 ms")


class HealthCheckTest(E2ETestCase):

    def test_failing_health_check_takes_an_endpoint_out_and_back(self):
        a, b = FakeBackend("a"), FakeBackend("b")
        self.addCleanup(a.stop)
        self.addCleanup(b.stop)
        cfg = make_config({"blue": [a.endpoint, b.endpoint]}, [route(steps=[])])
        cfg["upstreams"]["blue"]["health_check"] = {
            "path": "/healthz", "interval": "100ms", "timeout": "500ms",
            "healthy": 2, "unhealthy": 2}
        proxy = self.start_proxy(cfg)
        codes = [proxy.get("/color").status for _ in range(10)]
        self.assertEqual(codes, [200] * 10)
        self.assertGreater(b.requests, 0)

        b.healthy = False
        proxy.process.wait_for_log(r"health check: upstream blue endpoint .* is down")
        before = b.requests
        codes = [proxy.get("/color").status for _ in range(10)]
        self.assertEqual(codes, [200] * 10)
        self.assertEqual(b.requests, before, "a down endpoint still got requests")

        b.healthy = True
        proxy.process.wait_for_log(r"health check: upstream blue endpoint .* is up again")
        poll(lambda: (proxy.get("/color"), b.requests > before)[1], timeout=5,
             what="traffic back on the recovered endpoint")

    def test_all_endpoints_failing_checks_is_503(self):
        a = FakeBackend("a")
        self.addCleanup(a.stop)
        cfg = make_config({"blue": [a.endpoint]}, [route(steps=[])])
        cfg["upstreams"]["blue"]["health_check"] = {
            "path": "/healthz", "interval": "100ms", "timeout": "500ms",
            "healthy": 1, "unhealthy": 1}
        proxy = self.start_proxy(cfg)
        a.healthy = False
        proxy.process.wait_for_log(r"is down")
        self.assertEqual(proxy.get("/color").status, 503)


if __name__ == "__main__":
    unittest.main()
