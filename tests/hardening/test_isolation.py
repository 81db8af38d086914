"""Isolation (see docs/architecture.md#data-plane-rules): a slow client, a slow upstream or a bad
request on one connection never stalls another, and nothing a client sends crashes the proxy. One
worker, so that every connection shares one event loop: a blocking bug shows up as a stall."""

import random
import sys
import socket
import threading
import time
import unittest

from hardening import HardeningTestCase, RawClient, exchange, send_and_read_all
from test_smuggling import BODY_SHAPES, HEAD_SHAPES

GET = "GET / HTTP/1.1\r\nHost: a.example\r\n"
BLOCK = b"d" * (1 << 20)


def handler(release):
    def h(conn, req):
        if req.target == "/slow":
            release.wait(15)
            conn.reply(200, "slow")
        elif req.target == "/big":
            conn.send(f"HTTP/1.1 200 OK\r\nContent-Length: {64 * len(BLOCK)}\r\n\r\n")
            try:
                for _ in range(64):
                    conn.sock.sendall(BLOCK)
            except OSError:
                return False
        else:
            conn.reply(200, f"{req.method} {req.target} {req.body_len}")
        return True
    return h


class IsolationTest(HardeningTestCase):

    def setUp(self):
        super().setUp()
        self.release = threading.Event()
        self.addCleanup(self.release.set)
        self.fake = self.fake_upstream(handler(self.release))
        self.proxy = self.proxy_for({"blue": self.fake.endpoint}, workers=1,
                                    timeouts={"client_header": "2s"})

    def fast_requests_complete(self, n=30, within=2.0):
        t0 = time.monotonic()
        for i in range(n):
            r, _ = exchange(self.proxy.port, f"GET /fast{i} HTTP/1.1\r\nHost: a.example\r\n"
                            "Connection: close\r\n\r\n")
            self.assertEqual(r.status, 200, r)
        elapsed = time.monotonic() - t0
        self.assertLess(elapsed, within, f"{n} fast requests took {elapsed:.2f}s")

    def test_slow_upstream_does_not_stall_other_requests(self):
        slow = []
        for _ in range(10):
            c = self.raw_client(self.proxy.port, timeout=20)
            c.send("GET /slow HTTP/1.1\r\nHost: a.example\r\n\r\n")
            slow.append(c)
        self.fake.wait_heads(10)
        self.fast_requests_complete()
        self.release.set()
        for c in slow:
            self.assertEqual(c.response().status, 200)

    def test_client_that_does_not_read_does_not_stall_others(self):
        stuck = []
        for _ in range(5):
            c = self.raw_client(self.proxy.port)
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            c.send("GET /big HTTP/1.1\r\nHost: a.example\r\n\r\n")
            stuck.append(c)
        self.fake.wait_heads(5)
        self.fast_requests_complete()

    def test_bad_requests_next_to_good_ones(self):
        # Each bad request, on its own connection, still gets its refusal and a close while a
        # keep-alive connection next to it goes on being served.
        bad = HEAD_SHAPES + BODY_SHAPES
        errors = []

        def hammer():
            for name, raw, expected in bad:
                try:
                    r, closed = exchange(self.proxy.port, raw.encode("latin-1"), timeout=5,
                                         close_timeout=2)
                except (OSError, EOFError, ValueError, IndexError) as e:
                    errors.append(f"{name}: {e!r}")
                    continue
                if r is None or r.status != expected or not closed:
                    errors.append(f"{name}: expected {expected} and a close, got "
                                  f"{r.status if r else 'no response'}, closed={closed}")
        t = threading.Thread(target=hammer, daemon=True)
        t.start()
        keep = self.raw_client(self.proxy.port)
        for i in range(50):
            keep.send(f"GET /k{i} HTTP/1.1\r\nHost: a.example\r\n\r\n")
            self.assertEqual(keep.response().body, f"GET /k{i} 0".encode())
        t.join(60)
        self.assertFalse(t.is_alive())
        self.assertEqual(errors, [])
        self.assertAlive(self.proxy)
        self.fast_requests_complete()

    def test_mutated_requests_never_crash_the_proxy(self):
        # A bounded, reproducible mutation run in the spirit of HTTP Garden's mutations.py:
        # delete / insert / replace bytes with the ones that matter to HTTP framing.
        rng = random.Random(20240607)
        seeds = [raw.encode("latin-1") for _, raw, _ in HEAD_SHAPES[:40]] + [
            (GET + "\r\n").encode(),
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
        ]
        meaningful = [b"\r\n", b"\r", b"\n", b"\x00", b":", b" ", b"\t", b",", b";", b"0",
                      b"chunked", b"Content-Length: 1\r\n", b"Transfer-Encoding: chunked\r\n",
                      b"\xff", b"\x7f", b"-", b"+", b"\r\n\r\n"]
        statuses = {}
        for i in range(300):
            data = bytearray(rng.choice(seeds))
            for _ in range(rng.randint(1, 4)):
                op = rng.randrange(3)
                pos = rng.randrange(len(data) + 1)
                if op == 0 and pos < len(data):
                    del data[pos:pos + rng.randint(1, 3)]
                elif op == 1:
                    data[pos:pos] = rng.choice(meaningful)
                else:
                    data[pos:pos + 1] = rng.choice(meaningful)
            try:
                got, closed = send_and_read_all(self.proxy.port, bytes(data), timeout=5)
                key = got[9:12].decode("latin-1") if got.startswith(b"HTTP/1.1 ") else (
                    "closed" if closed else "open")
            except OSError as e:
                key = type(e).__name__
            statuses[key] = statuses.get(key, 0) + 1
            if i % 50 == 49:
                self.assertAlive(self.proxy)
        self.assertAlive(self.proxy)
        self.fast_requests_complete()
        sys.stderr.write(f"\nmutated requests: {statuses}\n")
        self.assertNotIn("500", statuses, statuses)
        self.assertNotIn("open", statuses, statuses)  # every connection ends by itself

    def test_client_reset_mid_body_frees_the_upstream(self):
        c = RawClient(self.proxy.port)
        c.send("POST /up HTTP/1.1\r\nHost: a.example\r\nContent-Length: 100000\r\n\r\n" +
               "x" * 1000)
        self.fake.wait_heads(1)
        import struct
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
        self.fake.wait_closed(1, timeout=5)
        self.assertEqual(self.fake.requests, [])
        self.fast_requests_complete()


if __name__ == "__main__":
    unittest.main()
