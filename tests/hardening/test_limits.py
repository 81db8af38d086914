"""Every limit and timeout of docs/config-reference.md (`limits`, `timeouts`), each with a small
configured value: the status, the close, and that the upstream got nothing it could act on. Waits
here are the point of the tests (a deadline must pass); everything else polls."""

import socket
import time
import unittest

from hardening import (SANITIZER, SLACK, HardeningTestCase, RawClient, blackhole_endpoint,
                       exchange, poll, rss_kib)

GET = "GET / HTTP/1.1\r\nHost: a.example\r\n"
POST = "POST /up HTTP/1.1\r\nHost: a.example\r\n"



class HeaderLimitsTest(HardeningTestCase):

    def setUp(self):
        super().setUp()
        self.fake = self.fake_upstream()
        self.proxy = self.proxy_for({"blue": self.fake.endpoint},
                                    limits={"max_request_header_bytes": 2048,
                                            "max_header_fields": 10,
                                            "max_request_body_bytes": 1000})

    def test_header_bytes_over_the_limit_is_431(self):
        r, closed = exchange(self.proxy.port, GET + "X-Big: " + "x" * 1900 + "\r\n\r\n")
        self.assertEqual(r.status, 200, "a head just under the limit passes")
        r, closed = exchange(self.proxy.port, GET + "X-Big: " + "x" * 2100 + "\r\n\r\n")
        self.assertEqual(r.status, 431, r)
        self.assertTrue(closed)
        self.assertEqual(self.fake.head_count(), 1)

    def test_a_huge_head_is_431_without_reading_it_all(self):
        c = self.raw_client(self.proxy.port)
        c.send(GET)
        sent = 0
        try:
            for _ in range(1024):  # up to 16 MiB, far over any buffer
                c.sock.sendall(b"X-Pad: " + b"y" * 16000 + b"\r\n")
                sent += 1
        except OSError:
            pass  # the proxy answered and closed: what we want
        r = c.response()
        self.assertEqual(r.status, 431)
        self.assertLess(sent, 1024)
        self.assertEqual(self.fake.head_count(), 0)

    def test_too_many_fields_is_431(self):
        fields = "".join(f"X-{i}: v\r\n" for i in range(9))  # + Host = 10
        r, _ = exchange(self.proxy.port, GET + fields + "\r\n")
        self.assertEqual(r.status, 200)
        r, closed = exchange(self.proxy.port, GET + fields + "X-9: v\r\n\r\n")
        self.assertEqual(r.status, 431, r)
        self.assertTrue(closed)
        self.assertEqual(self.fake.head_count(), 1)

    def test_content_length_over_the_body_limit_is_413_before_the_upstream(self):
        r, _ = exchange(self.proxy.port, POST + "Content-Length: 1000\r\n\r\n" + "a" * 1000)
        self.assertEqual(r.status, 200)
        r, closed = exchange(self.proxy.port, POST + "Content-Length: 1001\r\n\r\n" + "a" * 1001)
        self.assertEqual(r.status, 413, r)
        self.assertTrue(closed)
        self.assertEqual(self.fake.head_count(), 1)

    def test_413_before_expect_100_continue(self):
        c = self.raw_client(self.proxy.port)
        c.send(POST + "Content-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
        status, _, raw = c.head()
        self.assertEqual(status, 413, raw)
        self.assertEqual(self.fake.head_count(), 0)

    def test_chunked_body_over_the_limit_is_413_as_it_streams(self):
        c = self.raw_client(self.proxy.port)
        c.send(POST + "Transfer-Encoding: chunked\r\n\r\n" + "258\r\n" + "a" * 600 + "\r\n")
        c.send("258\r\n" + "b" * 600 + "\r\n0\r\n\r\n")
        r = c.response()
        self.assertEqual(r.status, 413, r)
        self.assertTrue(c.closed())
        self.assertEqual(self.fake.requests, [], "the upstream got a complete request")


class ClientTimeoutsTest(HardeningTestCase):

    def setUp(self):
        super().setUp()
        self.fake = self.fake_upstream()
        self.proxy = self.proxy_for({"blue": self.fake.endpoint},
                                    timeouts={"client_header": "1s", "client_idle": "1500ms",
                                              "client_body_idle": "1s"})

    def test_slowloris_head_gets_408_at_the_header_deadline(self):
        # One byte every 100 ms keeps any per-read timer happy; only a deadline for the whole
        # head stops it.
        c = self.raw_client(self.proxy.port)
        head = (GET + "X-Slow: " + "s" * 200 + "\r\n\r\n").encode()
        t0 = time.monotonic()
        status = None
        for b in head:
            if not c.send(bytes([b])):
                break
            c.sock.settimeout(0.1)
            try:
                c._more(0.1)
                break  # the proxy said something
            except socket.timeout:
                continue
            except EOFError:
                break
        try:
            status = c.response(timeout=5).status
        except EOFError:
            pass
        elapsed = time.monotonic() - t0
        self.assertEqual(status, 408)
        self.assertTrue(1.0 <= elapsed <= 1.0 + SLACK, f"408 after {elapsed:.2f}s")
        self.assertTrue(c.closed())
        self.assertEqual(self.fake.head_count(), 0)

    def test_slowloris_does_not_stall_other_clients(self):
        slow = []
        for _ in range(20):
            c = self.raw_client(self.proxy.port)
            c.send("GET / HTTP/1.1\r\n")
            slow.append(c)
        t0 = time.monotonic()
        for _ in range(20):
            r, _ = exchange(self.proxy.port, GET + "Connection: close\r\n\r\n")
            self.assertEqual(r.status, 200)
        self.assertLess(time.monotonic() - t0, 1.0)
        for c in slow:
            self.assertEqual(c.response(timeout=1.0 + SLACK + 1).status, 408)

    def test_keep_alive_idle_connection_is_closed(self):
        c = self.raw_client(self.proxy.port)
        c.send(GET + "\r\n")
        self.assertEqual(c.response().status, 200)
        t0 = time.monotonic()
        self.assertTrue(c.closed(timeout=1.5 + SLACK + 1), "idle keep-alive connection kept")
        elapsed = time.monotonic() - t0
        self.assertTrue(1.2 <= elapsed <= 1.5 + SLACK, f"closed after {elapsed:.2f}s")

    def test_silent_connection_is_closed_at_the_idle_timeout(self):
        c = self.raw_client(self.proxy.port)
        t0 = time.monotonic()
        self.assertTrue(c.closed(timeout=1.5 + SLACK + 1))
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)

    def test_stalled_body_gets_408(self):
        c = self.raw_client(self.proxy.port)
        c.send(POST + "Content-Length: 10\r\n\r\nabc")
        t0 = time.monotonic()
        r = c.response(timeout=5)
        elapsed = time.monotonic() - t0
        self.assertEqual(r.status, 408, r)
        self.assertTrue(0.9 <= elapsed <= 1.0 + SLACK, f"408 after {elapsed:.2f}s")
        self.assertTrue(c.closed())
        self.assertEqual(self.fake.requests, [])

    def test_slow_but_steady_body_is_fine(self):
        # Each read restarts client_body_idle: 5 pieces 400 ms apart take 2 s > 1 s in total.
        c = self.raw_client(self.proxy.port)
        c.send(POST + "Content-Length: 5\r\n\r\n")
        for ch in "abcde":
            time.sleep(0.4)  # slower than nothing, faster than the 1 s idle timeout
            c.send(ch)
        r = c.response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.fake.requests[-1].body, b"abcde")


class UpstreamTimeoutsTest(HardeningTestCase):

    def test_upstream_connect_timeout_is_504(self):
        hole = blackhole_endpoint(self)
        proxy = self.proxy_for({"blue": hole}, timeouts={"upstream_connect": "1s"})
        c = self.raw_client(proxy.port)
        t0 = time.monotonic()
        c.send(GET + "\r\n")
        r = c.response()
        elapsed = time.monotonic() - t0
        self.assertEqual(r.status, 504, r)
        self.assertTrue(0.9 <= elapsed <= 1.0 + SLACK, f"504 after {elapsed:.2f}s")
        self.assertAlive(proxy)

    def test_upstream_response_timeout_is_504(self):
        def hang(conn, req):
            conn.hang(10)
            return False
        fake = self.fake_upstream(hang)
        proxy = self.proxy_for({"blue": fake.endpoint}, timeouts={"upstream_response": "1s"})
        c = self.raw_client(proxy.port)
        t0 = time.monotonic()
        c.send(GET + "\r\n")
        r = c.response()
        elapsed = time.monotonic() - t0
        self.assertEqual(r.status, 504, r)
        self.assertTrue(0.9 <= elapsed <= 1.0 + SLACK, f"504 after {elapsed:.2f}s")
        fake.wait_closed(1, timeout=3)  # the proxy gave up its upstream connection
        self.assertEqual(fake.head_count(), 1, "a timed-out request must not be retried")

    def test_pooled_connection_is_closed_after_upstream_idle(self):
        fake = self.fake_upstream()
        proxy = self.proxy_for({"blue": fake.endpoint}, timeouts={"upstream_idle": "1s"})
        r, _ = exchange(proxy.port, GET + "Connection: close\r\n\r\n")
        self.assertEqual(r.status, 200)
        t0 = time.monotonic()
        fake.wait_closed(1, timeout=1.0 + SLACK + 1)
        elapsed = fake.close_times[0] - t0
        self.assertTrue(0.8 <= elapsed <= 1.0 + SLACK, f"closed after {elapsed:.2f}s")

    def test_pooled_connection_is_reused_within_upstream_idle(self):
        fake = self.fake_upstream()
        proxy = self.proxy_for({"blue": fake.endpoint}, timeouts={"upstream_idle": "30s"})
        for _ in range(5):
            r, _ = exchange(proxy.port, GET + "Connection: close\r\n\r\n")
            self.assertEqual(r.status, 200)
        self.assertEqual(fake.connections, 1)


    def test_upstream_saying_close_is_not_pooled(self):
        def close(conn, req):
            conn.reply(200, "bye", {"Connection": "close"})
            return False
        fake = self.fake_upstream(close)
        proxy = self.proxy_for({"blue": fake.endpoint}, timeouts={"upstream_idle": "30s"})
        for _ in range(3):
            r, _ = exchange(proxy.port, GET + "Connection: close\r\n\r\n")
            self.assertEqual((r.status, r.body), (200, b"bye"))
        self.assertEqual(fake.connections, 3)


class ConnectionLimitTest(HardeningTestCase):

    def test_max_connections_503_at_once_and_recovers(self):
        fake = self.fake_upstream()
        proxy = self.proxy_for({"blue": fake.endpoint}, limits={"max_connections": 3},
                               workers=2)
        held = []
        for _ in range(3):
            c = self.raw_client(proxy.port)
            c.send(GET + "\r\n")
            self.assertEqual(c.response().status, 200)
            held.append(c)
        t0 = time.monotonic()
        r, closed = exchange(proxy.port, GET + "\r\n")
        self.assertEqual(r.status, 503, r)
        self.assertTrue(closed)
        self.assertLess(time.monotonic() - t0, 1.0)
        held.pop().close()

        def served():
            r, _ = exchange(proxy.port, GET + "Connection: close\r\n\r\n")
            return r is not None and r.status == 200
        poll(served, what="a new connection to be served after one closed")
        # The held connections still work.
        for c in held:
            c.send(GET + "\r\n")
            self.assertEqual(c.response().status, 200)


class BoundedMemoryTest(HardeningTestCase):

    def test_many_partial_heads_keep_memory_bounded(self):
        fake = self.fake_upstream()
        proxy = self.proxy_for({"blue": fake.endpoint},
                               timeouts={"client_header": "30s", "client_idle": "30s"})
        base = rss_kib(proxy.process.pid)
        clients = []
        for i in range(300):
            c = self.raw_client(proxy.port)
            c.send(GET + "X-Pad: " + "p" * 15000)  # just under the 16 KiB head limit
            clients.append(c)
        r, _ = exchange(proxy.port, GET + "Connection: close\r\n\r\n")
        self.assertEqual(r.status, 200)
        grown = rss_kib(proxy.process.pid) - base
        if SANITIZER:
            return  # ASan's quarantine and shadow memory say nothing about our buffers
        # 300 connections with 15 KB each buffered: ~5 MB of data; each session's buffer is
        # bounded (64 KiB), so the proxy must stay well under 64 MiB of growth.
        self.assertLess(grown, 64 * 1024, f"RSS grew by {grown} KiB for 300 partial heads")
        for c in clients:
            c.close()
        self.assertAlive(proxy)


if __name__ == "__main__":
    unittest.main()
