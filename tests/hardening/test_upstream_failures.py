"""Upstream failures (see step 6 of docs/routing.md and docs/architecture.md#data-plane-rules):
connect failures retried on another endpoint and failed over to the other side; a stale pooled
connection retried once, only when that is safe (RFC 9110 §9.2.2); nothing else retried; resets
mid-body close the client connection; outlier ejection and active health checks take endpoints out
and bring them back."""

import threading
import time
import unittest

from hardening import (HardeningTestCase, RawClient, closed_port_endpoint, exchange, make_config,
                       poll, route)

GET = "GET / HTTP/1.1\r\nHost: a.example\r\n"


def fresh_get(port, path="/"):
    r, _ = exchange(port, f"GET {path} HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n")
    return r


class ConnectFailuresTest(HardeningTestCase):

    def test_new_connections_round_robin_across_endpoints(self):
        # The base the failure tests stand on: every endpoint of a side gets its share.
        fakes = [self.fake_upstream() for _ in range(2)]
        proxy = self.proxy_for({"blue": [f.endpoint for f in fakes]})
        for i in range(10):
            self.assertEqual(fresh_get(proxy.port, f"/{i}").status, 200)
        self.assertEqual([f.head_count() for f in fakes], [5, 5])

    def test_refused_endpoint_is_retried_on_another_endpoint(self):
        fake = self.fake_upstream()
        dead = closed_port_endpoint()
        proxy = self.proxy_for({"blue": [dead, fake.endpoint]})
        for i in range(10):
            r = fresh_get(proxy.port, f"/{i}")
            self.assertEqual(r.status, 200, f"request {i}: {r!r}")
        self.assertEqual(fake.head_count(), 10)

    def test_all_endpoints_refusing_is_503(self):
        proxy = self.proxy_for({"blue": [closed_port_endpoint(), closed_port_endpoint()]})
        c = self.raw_client(proxy.port)
        t0 = time.monotonic()
        c.send(GET + "\r\n")
        r = c.response()
        self.assertEqual(r.status, 503, r)
        self.assertLess(time.monotonic() - t0, 1.0)
        self.assertAlive(proxy)

    def test_dead_stable_side_fails_over_to_the_canary(self):
        blue = self.fake_upstream()
        green = self.fake_upstream()
        proxy = self.proxy_for({"blue": blue.endpoint, "green": green.endpoint},
                               routes=[route(name="hard", upstream="blue")])
        proxy.op("hard", "upstream", {"upstream": "green"})  # canary at 20 %
        blue.stop()
        for i in range(10):
            r = fresh_get(proxy.port, f"/{i}")
            self.assertEqual(r.status, 200, f"request {i}: {r!r}")
        self.assertEqual(green.head_count(), 10)


class StalePooledConnectionTest(HardeningTestCase):
    """The upstream closes a keep-alive connection just as the proxy reuses it."""

    def setUp(self):
        super().setUp()

        def handler(conn, req):
            if req.seq == 1 and req.target.startswith("/stale"):
                return False  # read the request, close without a byte
            conn.reply(200, f"{req.method} {req.target} {req.body_len}")
            return True
        self.fake = self.fake_upstream(handler)
        self.proxy = self.proxy_for({"blue": self.fake.endpoint})

    def prime(self):
        """One request, so that the proxy pools its upstream connection."""
        r = fresh_get(self.proxy.port, "/prime")
        self.assertEqual(r.status, 200)
        return self.fake.head_count()

    def test_idempotent_request_is_retried_once_on_a_fresh_connection(self):
        before = self.prime()
        r = fresh_get(self.proxy.port, "/stale-get")
        self.assertEqual(r.status, 200, r)
        with self.fake.lock:
            tries = [h for h in self.fake.heads[before:] if h.target == "/stale-get"]
        self.assertEqual([(h.conn_id != tries[0].conn_id, h.seq) for h in tries],
                         [(False, 1), (True, 0)])

    def test_post_without_body_is_retried(self):
        before = self.prime()
        r, _ = exchange(self.proxy.port, "POST /stale-post HTTP/1.1\r\nHost: a.example\r\n"
                        "Content-Length: 0\r\nConnection: close\r\n\r\n")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.fake.head_count() - before, 2)

    def test_post_with_a_sent_body_is_not_retried(self):
        before = self.prime()
        r, _ = exchange(self.proxy.port, "POST /stale-post HTTP/1.1\r\nHost: a.example\r\n"
                        "Content-Length: 5\r\nConnection: close\r\n\r\nhello")
        self.assertEqual(r.status, 502, r)
        self.assertEqual(self.fake.head_count() - before, 1)


class NothingElseIsRetriedTest(HardeningTestCase):

    def test_fresh_connection_closed_before_the_response_is_502_once(self):
        def close(conn, req):
            return False
        fake = self.fake_upstream(close)
        proxy = self.proxy_for({"blue": fake.endpoint})
        r, _ = exchange(proxy.port, GET + "\r\n")
        self.assertEqual(r.status, 502, r)
        self.assertEqual(fake.head_count(), 1)

    def test_fresh_connection_reset_is_502_once(self):
        def reset(conn, req):
            conn.reset()
            return False
        fake = self.fake_upstream(reset)
        proxy = self.proxy_for({"blue": fake.endpoint})
        r, _ = exchange(proxy.port, "POST / HTTP/1.1\r\nHost: a.example\r\n"
                        "Content-Length: 3\r\n\r\nabc")
        self.assertEqual(r.status, 502, r)
        self.assertEqual(fake.head_count(), 1)

    def test_5xx_is_passed_through_not_retried(self):
        def err(conn, req):
            conn.reply(503, "busy", reason="Service Unavailable")
            return True
        fake = self.fake_upstream(err)
        proxy = self.proxy_for({"blue": fake.endpoint})
        r, _ = exchange(proxy.port, GET + "\r\n")
        self.assertEqual((r.status, r.body), (503, b"busy"))
        self.assertEqual(fake.head_count(), 1)


class MidBodyFailuresTest(HardeningTestCase):

    def test_reset_mid_body_closes_the_client_and_the_proxy_lives_on(self):
        def cut(conn, req):
            if req.target == "/cut":
                conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 5000)
                conn.reset()
                return False
            conn.reply(200, "ok")
            return True
        fake = self.fake_upstream(cut)
        proxy = self.proxy_for({"blue": fake.endpoint})
        c = self.raw_client(proxy.port)
        c.send("GET /cut HTTP/1.1\r\nHost: a.example\r\n\r\n")
        with self.assertRaises(EOFError):
            c.response()
        self.assertEqual(fresh_get(proxy.port).status, 200)
        self.assertAlive(proxy)

    def test_upstream_closing_mid_chunk_closes_the_client(self):
        def cut(conn, req):
            conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"a\r\n0123456789\r\n10\r\nonly-half")
            return False  # FIN mid-chunk
        fake = self.fake_upstream(cut)
        proxy = self.proxy_for({"blue": fake.endpoint})
        c = self.raw_client(proxy.port)
        c.send(GET + "\r\n")
        with self.assertRaises(EOFError):
            c.response()

    def test_upstream_closing_a_read_to_eof_body_ends_it_cleanly(self):
        def eof(conn, req):
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
            return False
        fake = self.fake_upstream(eof)
        proxy = self.proxy_for({"blue": fake.endpoint})
        c = self.raw_client(proxy.port)
        c.send(GET + "\r\n")
        r = c.response()
        self.assertEqual((r.status, r.body), (200, b"until the end"))

    def test_client_going_away_mid_download_frees_the_upstream(self):
        stop = threading.Event()

        def endless(conn, req):
            conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            try:
                while not stop.is_set():
                    conn.send(b"400\r\n" + b"z" * 1024 + b"\r\n")
            except OSError:
                pass
            return False
        fake = self.fake_upstream(endless)
        self.addCleanup(stop.set)
        proxy = self.proxy_for({"blue": fake.endpoint})
        c = RawClient(proxy.port)
        c.send(GET + "\r\n")
        c.head()
        c.close()
        fake.wait_closed(1, timeout=5)
        self.assertAlive(proxy)


def outlier_config(consecutive=3, base="1s"):
    return {"consecutive_failures": consecutive, "base_ejection": base, "max_ejected_percent": 50}


class OutlierTest(HardeningTestCase):

    def start(self, bad_handler):
        self.bad = self.fake_upstream(bad_handler)
        self.good = self.fake_upstream()
        cfg_routes = [route(name="hard", upstream="blue", steps=[])]
        cfg = make_config({"blue": [self.bad.endpoint, self.good.endpoint]}, cfg_routes)
        cfg["upstreams"]["blue"]["outlier"] = outlier_config()
        return self.start_proxy(cfg)

    def test_endpoint_with_consecutive_5xx_is_ejected_and_comes_back(self):
        def fail(conn, req):
            conn.reply(500, "bad")
            return True
        proxy = self.start(fail)
        statuses = [fresh_get(proxy.port, f"/{i}").status for i in range(20)]
        # Round-robin sends every other request to the bad endpoint until its third 500.
        self.assertEqual(statuses.count(500), 3, statuses)
        self.assertEqual(self.bad.head_count(), 3)
        # After base_ejection (1 s) it gets traffic again.
        poll(lambda: fresh_get(proxy.port).status == 500 or None, timeout=5,
             what="the ejected endpoint to come back")

    def test_connect_failures_eject_too(self):
        good = self.fake_upstream()
        cfg = make_config({"blue": [closed_port_endpoint(), good.endpoint]},
                          [route(name="hard", upstream="blue", steps=[])])
        cfg["upstreams"]["blue"]["outlier"] = outlier_config(consecutive=1, base="30s")
        proxy = self.start_proxy(cfg)
        refused = lambda: proxy.logs().count("connect failed")  # noqa: E731
        for i in range(4):
            self.assertEqual(fresh_get(proxy.port, f"/{i}").status, 200)
        self.assertEqual(refused(), 1)
        # A refused connect alone holds an endpoint off for 1 s; an ejection for 30 s.
        time.sleep(1.5)  # the point of the test: outlast the plain hold-off
        for i in range(4):
            self.assertEqual(fresh_get(proxy.port, f"/{i}").status, 200)
        self.assertEqual(refused(), 1, "the ejected endpoint was tried again")

    def test_never_more_than_max_ejected_percent(self):
        def fail(conn, req):
            conn.reply(500, "bad")
            return True
        a = self.fake_upstream(fail)
        b = self.fake_upstream(fail)
        cfg = make_config({"blue": [a.endpoint, b.endpoint]},
                          [route(name="hard", upstream="blue", steps=[])])
        cfg["upstreams"]["blue"]["outlier"] = outlier_config(consecutive=2, base="30s")
        proxy = self.start_proxy(cfg)
        statuses = [fresh_get(proxy.port, f"/{i}").status for i in range(20)]
        # At most one of two is ejected: the side never goes dark by ejection alone.
        self.assertEqual(statuses, [500] * 20)
        self.assertGreater(min(a.head_count(), b.head_count()), 0)


class HealthCheckTest(HardeningTestCase):

    def test_failing_health_check_takes_an_endpoint_out_and_back(self):
        healthy = threading.Event()

        def handler(conn, req):
            if req.target == "/healthz":
                conn.reply(200 if healthy.is_set() else 503, "h")
            else:
                conn.reply(200, "a")
            return True
        a = self.fake_upstream(handler)
        b = self.fake_upstream()
        cfg = make_config({"blue": [a.endpoint, b.endpoint]},
                          [route(name="hard", upstream="blue", steps=[])])
        cfg["upstreams"]["blue"]["health_check"] = {
            "path": "/healthz", "interval": "200ms", "timeout": "500ms", "healthy": 1,
            "unhealthy": 1}
        proxy = self.start_proxy(cfg)
        a_checks = lambda: sum(1 for h in a.heads if h.target == "/healthz")  # noqa: E731
        poll(lambda: a_checks() >= 2, what="health checks of endpoint a")
        a_traffic = sum(1 for h in a.heads if h.target != "/healthz")
        for i in range(10):
            self.assertEqual(fresh_get(proxy.port, f"/{i}").body, f"GET /{i} 0".encode())
        self.assertEqual(sum(1 for h in a.heads if h.target != "/healthz"), a_traffic)
        healthy.set()
        poll(lambda: fresh_get(proxy.port).body == b"a" or None, timeout=5,
             what="endpoint a back after a passing check")


if __name__ == "__main__":
    unittest.main()
