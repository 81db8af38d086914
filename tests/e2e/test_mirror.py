"""Shadow traffic end to end (docs/mirroring.md): a `setMirror` step copies a share of the
stable-bound requests to the canary, marked `X-Canary-Mirror: 1`, and the client only ever gets
stable's answers. Backends are Python servers in this process that count what they receive (with
and without the header); the canary can hold every request until the test releases it, or be
down. Every load loop is bounded in count and time; nothing sleeps a fixed time."""

import http.server
import re
import threading
import time

from harness import E2ETestCase, DataClient, closed_port, make_config, poll

NAME = "shop"
MAX_SECONDS = 30.0


class CountingServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # Up to 32 copies connect at once: the default backlog (5) would drop SYNs and turn some
    # copies into connect timeouts.
    request_queue_size = 128

    def __init__(self, color):
        self.color = color
        self.lock = threading.Lock()
        self.plain = 0      # requests without X-Canary-Mirror
        self.mirrored = 0   # requests with X-Canary-Mirror: 1
        self.methods = []   # (method, mirrored, body) of each request
        self.held = 0       # requests waiting on `release` now
        self.release = None  # a threading.Event every request waits on, or None
        self.status = 200    # the answer's status code
        self.hang_up = False  # close each connection after its answer, without saying so
        super().__init__(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.server_address[1]

    def handle_error(self, request, client_address):
        pass  # a copy that timed out closed its connection: not an error of the test

    def counts(self):
        with self.lock:
            return self.plain, self.mirrored

    def stop(self):
        if self.release is not None:
            self.release.set()
        self.shutdown()
        self.server_close()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # head and body leave at once: no delayed-ACK stalls

    def log_message(self, *args):
        pass

    def answer(self):
        srv = self.server
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        mirrored = self.headers.get("X-Canary-Mirror") == "1"
        with srv.lock:
            if mirrored:
                srv.mirrored += 1
            else:
                srv.plain += 1
            srv.methods.append((self.command, mirrored, body))
            gate = srv.release
            if gate is not None:
                srv.held += 1
        if gate is not None:
            gate.wait(MAX_SECONDS)
            with srv.lock:
                srv.held -= 1
        data = srv.color.encode()
        self.send_response(srv.status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        if srv.hang_up:
            self.close_connection = True

    do_GET = do_POST = do_HEAD = answer


def metric(text, name, **labels):
    """The value of the sample of `name` with exactly these labels (0 when absent)."""
    for line in text.splitlines():
        m = re.match(r"^%s\{([^}]*)\} (\S+)$" % re.escape(name), line)
        if not m:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if got == {k: str(v) for k, v in labels.items()}:
            return float(m.group(2))
    return 0.0


def total(text):
    """Every mirrored copy of the route, whatever its code."""
    return sum(float(v) for v in re.findall(
        r'^canary_proxy_mirror_requests_total\{[^}]*route="%s"[^}]*\} (\S+)$' % NAME, text, re.M))


class MirrorTest(E2ETestCase):
    def server(self, color):
        s = CountingServer(color)
        self.addCleanup(s.stop)
        return s

    def proxy_for(self, stable_ep, canary_ep, steps, timeouts=None, analysis=None):
        route = {"name": NAME, "path_prefix": "/", "upstream": "blue", "steps": steps}
        if analysis:
            route["analysis"] = analysis
        cfg = make_config({"blue": stable_ep, "green": canary_ep}, [route], workers=1,
                          timeouts=timeouts)
        proxy = self.start_proxy(cfg)
        proxy.op(NAME, "upstream", {"upstream": "green"})
        return proxy

    def gets(self, proxy, n, method="GET", body=None):
        """n sequential requests on one keep-alive connection: their bodies (bounded in time)."""
        client = DataClient(proxy.port)
        self.addCleanup(client.close)
        deadline = time.monotonic() + MAX_SECONDS
        bodies = []
        for _ in range(n):
            self.assertLess(time.monotonic(), deadline, "requests took too long")
            r = client.request(method, "/x", body=body)
            self.assertEqual(r.status, 200, r.text)
            bodies.append(r.text)
        return bodies

    def metrics(self, proxy):
        return proxy.admin("GET", "/metrics").text

    def test_half_of_gets_copied_posts_not_and_set_weight_ends_it(self):
        blue, green = self.server("blue"), self.server("green")
        steps = [{"setMirror": {"percent": 50}}, {"pause": {}}, {"setWeight": 50},
                 {"pause": {}}]
        proxy = self.proxy_for(blue.address, green.address, steps)
        s = proxy.status(NAME)
        self.assertEqual(s["phase"], "Paused")
        self.assertEqual(s["weight"], 0)
        self.assertEqual(s["mirror"], {"percent": 50, "methods": ["GET", "HEAD"]})

        n = 40
        self.assertEqual(set(self.gets(proxy, n)), {"blue"})
        self.assertEqual(blue.counts(), (n, 0))
        # Copies are sent after the client's answer: wait until all are counted.
        poll(lambda: metric(self.metrics(proxy), "canary_proxy_mirror_requests_total",
                            route=NAME, upstream="green", code=200) == n // 2,
             what="20 mirrored copies answered")
        self.assertEqual(green.counts(), (0, n // 2))  # exactly half, every one marked
        # POST is not in the mirrored methods.
        self.assertEqual(set(self.gets(proxy, 10, "POST", b"order")), {"blue"})
        text = self.metrics(proxy)
        self.assertEqual(green.counts(), (0, n // 2))
        self.assertEqual(metric(text, "canary_proxy_mirror_requests_total", route=NAME,
                                upstream="green", code=200), n // 2)
        # Copies are not client traffic: requests_total has none for the canary.
        self.assertEqual(metric(text, "canary_proxy_requests_total", route=NAME,
                                variant="canary", upstream="green", code=200), 0)
        self.assertEqual(metric(text, "canary_proxy_requests_total", route=NAME,
                                variant="stable", upstream="blue", code=200), n + 10)

        # The next setWeight ends mirroring: the canary gets real traffic, no more copies.
        proxy.op(NAME, "promote")
        s = proxy.wait_status(lambda s: s["weight"] == 50, NAME, what="weight 50")
        self.assertIsNone(s["mirror"])
        bodies = self.gets(proxy, 20)
        self.assertEqual(bodies.count("green"), 10)
        self.assertEqual(green.counts(), (10, n // 2))
        self.assertEqual(metric(self.metrics(proxy), "canary_proxy_mirror_requests_total",
                                route=NAME, upstream="green", code=200), n // 2)

    def test_a_held_canary_never_delays_clients_and_a_full_queue_drops(self):
        blue, green = self.server("blue"), self.server("green")
        green.release = threading.Event()
        steps = [{"setMirror": {"percent": 100}}, {"pause": {}}]
        proxy = self.proxy_for(blue.address, green.address, steps,
                               timeouts={"upstream_response": "60s"})
        # Baseline latency without copies (printed, not a criterion): POST is not mirrored.
        t = time.monotonic()
        self.gets(proxy, 50, "POST", b"x")
        plain = time.monotonic() - t
        # 32 copies in flight + 256 queued; the rest are dropped.
        n = 320
        t = time.monotonic()
        bodies = self.gets(proxy, n)
        mirrored = time.monotonic() - t
        print(f"\n  {n} GETs with every copy held: {mirrored / n * 1000:.2f} ms each; "
              f"50 unmirrored POSTs: {plain / 50 * 1000:.2f} ms each")
        self.assertEqual(set(bodies), {"blue"})
        # Every client answer came while the canary still held the copies it had.
        poll(lambda: green.held == 32, what="32 copies held by the canary")
        self.assertEqual(green.counts(), (0, 32))
        text = self.metrics(proxy)
        self.assertEqual(metric(text, "canary_proxy_mirror_dropped_total", route=NAME,
                                reason="queue_full"), n - 32 - 256)
        self.assertEqual(metric(text, "canary_proxy_mirror_dropped_total", route=NAME,
                                reason="body_too_large"), 0)
        green.release.set()
        poll(lambda: total(self.metrics(proxy)) == 32 + 256, timeout=MAX_SECONDS,
             what="the queued copies sent once released")
        text = self.metrics(proxy)
        self.assertEqual(metric(text, "canary_proxy_mirror_requests_total", route=NAME,
                                upstream="green", code=200), 32 + 256, text)
        self.assertEqual(green.counts(), (0, 32 + 256))

    def test_a_slow_canary_times_out_copies_and_clients_see_nothing(self):
        blue, green = self.server("blue"), self.server("green")
        green.release = threading.Event()  # never set during the test: every copy is slow
        steps = [{"setMirror": {"percent": 50}}, {"pause": {}}]
        proxy = self.proxy_for(blue.address, green.address, steps,
                               timeouts={"upstream_response": "300ms"})
        self.assertEqual(set(self.gets(proxy, 20)), {"blue"})
        poll(lambda: metric(self.metrics(proxy), "canary_proxy_mirror_requests_total",
                            route=NAME, upstream="green", code="000") == 10,
             what="10 copies timed out (code 000)")

    def test_a_down_canary_counts_000_and_bodies_are_copied_up_to_the_limit(self):
        blue = self.server("blue")
        steps = [{"setMirror": {"percent": 100, "methods": ["GET", "POST"],
                                "allow_unsafe": True, "max_body_bytes": 8}},
                 {"pause": {}}]
        proxy = self.proxy_for(blue.address, "127.0.0.1:%d" % closed_port(), steps)
        self.assertEqual(set(self.gets(proxy, 5)), {"blue"})
        poll(lambda: metric(self.metrics(proxy), "canary_proxy_mirror_requests_total",
                            route=NAME, upstream="green", code="000") == 5,
             what="5 copies failed to connect (code 000)")
        self.assertEqual(set(self.gets(proxy, 3, "POST", b"0123456789")), {"blue"})
        self.assertEqual(metric(self.metrics(proxy), "canary_proxy_mirror_dropped_total",
                                route=NAME, reason="body_too_large"), 3)
        self.assertEqual([m for m in blue.methods if m[0] == "POST"],
                         [("POST", False, b"0123456789")] * 3)

    def test_a_small_body_reaches_the_canary(self):
        blue, green = self.server("blue"), self.server("green")
        steps = [{"setMirror": {"percent": 100, "methods": ["POST"], "allow_unsafe": True,
                                "max_body_bytes": 8}},
                 {"pause": {}}]
        proxy = self.proxy_for(blue.address, green.address, steps)
        self.assertEqual(set(self.gets(proxy, 2, "POST", b"order-1")), {"blue"})
        poll(lambda: green.counts() == (0, 2), what="2 copies")
        self.assertEqual(green.methods, [("POST", True, b"order-1")] * 2)
        proxy.op(NAME, "abort")
        s = proxy.wait_status(lambda s: s["phase"] == "Degraded", NAME, what="aborted")
        self.assertIsNone(s["mirror"])
        self.gets(proxy, 4, "POST", b"order-2")
        self.assertEqual(green.counts(), (0, 2))

    def test_copies_feed_the_analysis_which_aborts_a_failing_canary(self):
        # Every copy gets a 500: the analysis judges the canary on copies alone (no client ever
        # reaches it) and aborts it.
        blue, green = self.server("blue"), self.server("green")
        green.status = 500
        steps = [{"setMirror": {"percent": 50}}, {"pause": {}}]
        an = {"interval": "500ms", "inconclusive_limit": 1000,
              "metrics": [{"name": "errors", "builtin": "error_rate_vs_stable",
                           "min_requests": 30}]}
        proxy = self.proxy_for(blue.address, green.address, steps, analysis=an)
        client = DataClient(proxy.port)
        self.addCleanup(client.close)
        start = time.monotonic()
        s = proxy.status(NAME)
        for i in range(3000):
            if time.monotonic() - start > MAX_SECONDS:
                break
            r = client.request("GET", "/x")
            self.assertEqual((r.status, r.text), (200, "blue"))
            if i % 50 == 0:
                s = proxy.status(NAME)
                if s["phase"] == "Degraded":
                    break
        self.assertEqual(s["phase"], "Degraded", s)
        self.assertTrue(s["message"].startswith("AnalysisFailed: errors"), s["message"])
        self.assertIsNone(s["mirror"])
        self.assertEqual(green.counts()[0], 0)  # no client request ever reached the canary

    def test_a_pooled_connection_the_canary_closed_is_not_a_failed_copy(self):
        # The canary closes every connection after answering while the proxy keeps it for
        # reuse: the next copy finds it dead and must go again on a new connection.
        blue, green = self.server("blue"), self.server("green")
        green.hang_up = True
        steps = [{"setMirror": {"percent": 100}}, {"pause": {}}]
        proxy = self.proxy_for(blue.address, green.address, steps)
        for i in range(1, 11):
            self.assertEqual(self.gets(proxy, 1), ["blue"])
            poll(lambda: total(self.metrics(proxy)) == i, what=f"copy {i} done")
        text = self.metrics(proxy)
        self.assertEqual(metric(text, "canary_proxy_mirror_requests_total", route=NAME,
                                upstream="green", code=200), 10, text)
        self.assertEqual(green.counts(), (0, 10))


if __name__ == "__main__":
    import unittest
    unittest.main()
