"""Reload and drain (see docs/architecture.md#data-plane-rules): reloads and weight
changes under load fail no request; SIGTERM stops accepting, closes idle keep-alive connections,
finishes in-flight requests with Connection: close, cuts what remains at timeouts.drain and exits
0."""

import copy
import http.client
import socket
import threading
import time
import unittest

from hardening import (HardeningTestCase, RawClient, make_config, poll, route)

LOAD_SECONDS_MAX = 60


class LoadGenerator:
    """Bounded load: `keepalive` threads on one connection each, `fresh` threads opening a
    connection per request; each stops at `stop` or after LOAD_SECONDS_MAX."""

    def __init__(self, port, keepalive=12, fresh=4):
        self.port = port
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.colors = {}
        self.failures = []
        self.threads = [threading.Thread(target=self.run, args=(True,), daemon=True)
                        for _ in range(keepalive)]
        self.threads += [threading.Thread(target=self.run, args=(False,), daemon=True)
                         for _ in range(fresh)]
        for t in self.threads:
            t.start()

    def run(self, keepalive):
        deadline = time.monotonic() + LOAD_SECONDS_MAX
        conn = None
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                headers = {} if keepalive else {"Connection": "close"}
                conn.request("GET", "/color", headers=headers)
                r = conn.getresponse()
                body = r.read()
                if r.status != 200:
                    raise AssertionError(f"status {r.status}: {body[:200]!r}")
                color = body.decode().strip().strip('"')
                with self.lock:
                    self.ok += 1
                    self.colors[color] = self.colors.get(color, 0) + 1
                if not keepalive or r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except Exception as e:  # every failure counts; keep going with a new connection
                with self.lock:
                    self.failures.append(f"{'keep-alive' if keepalive else 'fresh'}: {e!r}")
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(15)
        return self.ok, self.failures


class ReloadUnderLoadTest(HardeningTestCase):

    def test_ten_reloads_and_weight_changes_fail_no_request(self):
        blue, green = self.blue_green()
        cfg = make_config({"blue": blue.endpoint, "green": green.endpoint},
                          [route(upstream="blue")], workers=2)
        proxy = self.start_proxy(cfg)
        # Start a rollout from the file, as an operator would: blue -> green at 20 %.
        desired = copy.deepcopy(proxy.config)
        desired["routes"][0]["upstream"] = "green"
        proxy.write_config(desired)
        self.assertEqual(proxy.admin("POST", "/api/v1/config/reload").status, 200)
        load = LoadGenerator(proxy.port)
        self.addCleanup(load.stop.set)
        poll(lambda: load.ok > 50, what="the load to start")
        weights = [10, 50, 30, 70, 5, 90, 40, 60, 20, 80]
        for i in range(10):
            changed = copy.deepcopy(desired)
            changed["timeouts"]["client_idle"] = f"{60 + i}s"  # a real change each time
            proxy.write_config(changed)
            if i % 2:
                proxy.sighup()
            else:
                r = proxy.admin("POST", "/api/v1/config/reload")
                self.assertEqual(r.status, 200, r)
            proxy.op("canary-demo", "weight", {"weight": weights[i]})
            n = load.ok
            poll(lambda: load.ok >= n + 500, timeout=20, what="requests to flow after a reload")
        ok, failures = load.finish()
        self.assertEqual(failures, [], f"{len(failures)} failed of {ok + len(failures)}")
        self.assertGreater(ok, 5000)
        self.assertEqual(set(load.colors), {"blue", "green"}, load.colors)
        self.assertAlive(proxy)


class DrainTest(HardeningTestCase):

    def test_sigterm_drain(self):
        release = threading.Event()
        sse_started = threading.Event()

        def handler(conn, req):
            if req.target == "/slow":
                release.wait(10)
                conn.reply(200, "slow")
                return True
            if req.target == "/events":
                conn.send("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
                          "data: hello\n\n")
                sse_started.set()
                conn.hang(30)
                return False
            conn.reply(200, "fast")
            return True
        fake = self.fake_upstream(handler)
        proxy = self.proxy_for({"blue": fake.endpoint}, timeouts={"drain": "2s"}, workers=2)
        port = proxy.port

        idle = self.raw_client(port)
        idle.send("GET / HTTP/1.1\r\nHost: a.example\r\n\r\n")
        self.assertEqual(idle.response().status, 200)

        slow = self.raw_client(port)
        slow.send("GET /slow HTTP/1.1\r\nHost: a.example\r\n\r\n")

        sse = self.raw_client(port)
        sse.send("GET /events HTTP/1.1\r\nHost: a.example\r\n\r\n")
        self.assertEqual(sse.head()[0], 200)
        self.assertTrue(sse_started.wait(5))
        fake.wait_heads(3)

        t0 = time.monotonic()
        proxy.process.signal(15)

        # Idle keep-alive connections are closed, without a response.
        self.assertTrue(idle.closed(timeout=3), "idle keep-alive connection kept")

        # New connections are refused once the listener is closed.
        def refused():
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=1)
            except OSError:
                return True
            s.close()
            return False
        poll(refused, timeout=3, what="the data listener to close")

        # The admin listener answers during the drain.
        self.assertEqual(proxy.admin("GET", "/readyz").status, 503)

        # The in-flight request finishes, with Connection: close.
        release.set()
        r = slow.response()
        self.assertEqual((r.status, r.body), (200, b"slow"))
        self.assertEqual((r.header("Connection") or "").lower(), "close")
        self.assertTrue(slow.closed())

        # The SSE stream is cut at the drain deadline, and the process exits 0.
        self.assertTrue(sse.drain_to_eof(timeout=5))
        cut = time.monotonic() - t0
        self.assertEqual(proxy.process.wait(10), 0, proxy.logs())
        self.assertTrue(1.5 <= cut <= 4.0, f"SSE cut {cut:.2f}s after SIGTERM (drain: 2s)")

    def test_drain_without_connections_exits_at_once(self):
        fake = self.fake_upstream()
        proxy = self.proxy_for({"blue": fake.endpoint}, timeouts={"drain": "10s"})
        t0 = time.monotonic()
        self.assertEqual(proxy.sigterm(), 0)
        self.assertLess(time.monotonic() - t0, 3.0)


if __name__ == "__main__":
    unittest.main()
