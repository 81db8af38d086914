"""WebSocket (HTTP/1.1 Upgrade) through the proxy end to end (docs/edge.md), with
python3-websockets on both ends: the test's own websockets servers are the upstreams. Routing at
the upgrade (X-Canary), echo both ways (text, binary, a large frame), over TLS too, a reload
that leaves an open tunnel alone, a drain that cuts it at its deadline, tunnel_idle, the 101
counted when the tunnel closes, and Upgrade: h2c never forwarded."""

import asyncio
import os
import signal
import socket
import ssl
import sys
import threading
import unittest

try:
    import websockets
except ImportError:
    # ctest runs the interpreter CMake found (it may be a pyenv one); python3-websockets is
    # Debian's, installed for /usr/bin/python3: run this module there instead.
    SYSTEM = "/usr/bin/python3"
    if os.path.exists(SYSTEM) and os.path.realpath(sys.executable) != os.path.realpath(SYSTEM):
        sys.stdout.flush()
        argv = ([SYSTEM, os.path.abspath(__file__)] if __name__ == "__main__"
                else [SYSTEM, "-m", "unittest", "-v", __name__])
        os.execv(SYSTEM, argv)
    raise

from harness import DEADLINE, E2ETestCase, make_config, poll, raw_exchange, route
from test_tls import CA, TlsProxy

HOLD = [{"setWeight": 0}, {"pause": {}}]


class EchoServer:
    """A websockets server on 127.0.0.1:<free port> in a thread of its own: each message comes
    back prefixed with the server's name (text) or as it was (binary)."""

    def __init__(self, name):
        self.name = name
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.upgrade_headers = []  # the request headers of each upgrade it saw
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self.ready.wait(DEADLINE):
            raise AssertionError("the websockets server did not start")
        self.endpoint = f"127.0.0.1:{self.port}"

    async def _handler(self, ws, path=None):
        self.upgrade_headers.append({k.lower(): v for k, v in ws.request_headers.raw_items()})
        try:
            async for msg in ws:
                await ws.send(msg if isinstance(msg, bytes) else f"{self.name}:{msg}")
        except websockets.ConnectionClosed:
            pass  # the tests that cut tunnels (drain, idle) end here

    def _run(self):
        asyncio.set_event_loop(self.loop)

        async def main():
            self.stop_event = asyncio.Event()
            async with websockets.serve(self._handler, "127.0.0.1", 0, max_size=None,
                                        ping_interval=None) as server:
                self.port = server.sockets[0].getsockname()[1]
                self.ready.set()
                await self.stop_event.wait()

        self.loop.run_until_complete(main())
        self.loop.close()

    def stop(self):
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(DEADLINE)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, DEADLINE * 3))


def metric(text, name, labels):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(l in line for l in labels):
            total += float(line.rsplit(" ", 1)[1])
    return total


class WebSocketTest(E2ETestCase):

    def setUp(self):
        super().setUp()
        self.blue = EchoServer("blue")
        self.addCleanup(self.blue.stop)
        self.green = EchoServer("green")
        self.addCleanup(self.green.stop)

    def proxy_config(self, timeouts=None):
        return make_config({"blue": self.blue.endpoint, "green": self.green.endpoint},
                           [route(steps=HOLD)], timeouts=timeouts)

    def start(self, timeouts=None):
        proxy = self.start_proxy(self.proxy_config(timeouts))
        proxy.op("canary-demo", "upstream", {"upstream": "green"})  # canary green, weight 0
        return proxy

    def url(self, proxy):
        return f"ws://127.0.0.1:{proxy.port}/chat"

    def test_echo_both_ways_text_binary_and_large(self):
        proxy = self.start()

        async def go():
            async with websockets.connect(self.url(proxy), max_size=None,
                                          ping_interval=None) as ws:
                for i in range(20):
                    await ws.send(f"m{i}")
                    self.assertEqual(await ws.recv(), f"blue:m{i}")
                big = os.urandom(1 << 20)  # many relay buffers' worth, both ways
                await ws.send(big)
                self.assertEqual(await ws.recv(), big)
        run(go())
        headers = self.blue.upgrade_headers[0]
        self.assertEqual(headers.get("upgrade", "").lower(), "websocket", headers)
        self.assertIn("upgrade", headers.get("connection", "").lower())
        self.assertEqual(headers.get("x-forwarded-proto"), "http")
        # The 101 is counted once the tunnel has closed.
        poll(lambda: metric(proxy.admin("GET", "/metrics").text, "canary_proxy_requests_total",
                            ['code="101"', 'variant="stable"']) == 1,
             what="one 101 in canary_proxy_requests_total")

    def test_canary_chosen_at_the_upgrade_by_x_canary(self):
        proxy = self.start()

        async def go():
            async with websockets.connect(self.url(proxy), extra_headers={"X-Canary": "always"},
                                          ping_interval=None) as ws:
                await ws.send("hi")
                self.assertEqual(await ws.recv(), "green:hi")
            async with websockets.connect(self.url(proxy), ping_interval=None) as ws:
                await ws.send("hi")
                self.assertEqual(await ws.recv(), "blue:hi")
        run(go())

    def test_a_reload_keeps_an_open_tunnel(self):
        proxy = self.start()

        async def go():
            async with websockets.connect(self.url(proxy), ping_interval=None) as ws:
                await ws.send("before")
                self.assertEqual(await ws.recv(), "blue:before")
                r = await asyncio.to_thread(proxy.admin, "POST", "/api/v1/config/reload")
                self.assertEqual(r.status, 200, r.text)
                proxy.sighup()
                await asyncio.to_thread(proxy.process.wait_for_log, r"reload", DEADLINE)
                for i in range(5):
                    await ws.send(f"after{i}")
                    self.assertEqual(await ws.recv(), f"blue:after{i}")
        run(go())

    def test_a_drain_cuts_the_tunnel_at_its_deadline(self):
        proxy = self.start(timeouts={"drain": "1s"})

        async def go():
            async with websockets.connect(self.url(proxy), ping_interval=None) as ws:
                await ws.send("a")
                self.assertEqual(await ws.recv(), "blue:a")
                proxy.process.signal(signal.SIGTERM)
                # Still open during the drain ...
                await ws.send("b")
                self.assertEqual(await ws.recv(), "blue:b")
                # ... and cut at the deadline (well within DEADLINE).
                with self.assertRaises(websockets.ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), DEADLINE)
        run(go())
        self.assertEqual(proxy.process.wait(DEADLINE), 0)

    def test_tunnel_idle_closes_a_quiet_tunnel(self):
        proxy = self.start(timeouts={"tunnel_idle": "300ms"})

        async def go():
            async with websockets.connect(self.url(proxy), ping_interval=None) as ws:
                await ws.send("x")
                self.assertEqual(await ws.recv(), "blue:x")
                with self.assertRaises(websockets.ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), DEADLINE)
        run(go())

    def test_wss_through_the_tls_listener(self):
        ca = CA(self.tmp)
        cert, key = ca.issue("site", "localhost", ["localhost"])
        cfg = self.proxy_config()
        cfg["tls"] = {"listen": "127.0.0.1:0", "certificates": [{"cert": cert, "key": key}]}
        proxy = TlsProxy(self.tmp, cfg)
        self.addCleanup(self._dump_logs_on_failure, proxy)
        self.addCleanup(proxy.stop)
        proxy.start()
        ctx = ssl.create_default_context(cafile=ca.cert)

        async def go():
            async with websockets.connect(f"wss://localhost:{proxy.tls_port}/chat", ssl=ctx,
                                          max_size=None, ping_interval=None) as ws:
                for i in range(5):
                    await ws.send(f"s{i}")
                    self.assertEqual(await ws.recv(), f"blue:s{i}")
                big = os.urandom(300_000)
                await ws.send(big)
                self.assertEqual(await ws.recv(), big)
        run(go())
        self.assertEqual(self.blue.upgrade_headers[0].get("x-forwarded-proto"), "https")


class RawUpgradeServer:
    """One-connection upstream for a non-WebSocket upgrade: answers 101, echoes until the
    client's half-close reaches it, then sends b"bye" and closes."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(DEADLINE)
        self.endpoint = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.saw_eof = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(DEADLINE)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: raw\r\n"
                         b"Connection: Upgrade\r\n\r\n")
            rest = head.split(b"\r\n\r\n", 1)[1]
            if rest:
                conn.sendall(rest)
            while True:
                data = conn.recv(4096)
                if not data:
                    break
                conn.sendall(data)
            self.saw_eof.set()
            conn.sendall(b"bye")

    def close(self):
        self.sock.close()
        self.thread.join(DEADLINE)


def read_until(sock, marker):
    buf = b""
    while marker not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            break
        buf += chunk
    return buf


class UpgradeRulesTest(E2ETestCase):

    def test_a_client_half_close_reaches_the_upstream_and_its_answer_comes_back(self):
        up = RawUpgradeServer()
        self.addCleanup(up.close)
        proxy = self.start_proxy(make_config({"blue": up.endpoint}, [route(steps=HOLD)]))
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=DEADLINE) as s:
            s.sendall(b"GET /raw HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                      b"Upgrade: raw\r\n\r\n")
            head = read_until(s, b"\r\n\r\n")
            self.assertTrue(head.startswith(b"HTTP/1.1 101 "), head)
            self.assertIn(b"\r\nUpgrade: raw\r\n", head)
            s.sendall(b"ping")
            self.assertEqual(read_until(s, b"ping").split(b"\r\n\r\n", 1)[-1][-4:], b"ping")
            s.shutdown(socket.SHUT_WR)
            self.assertTrue(up.saw_eof.wait(DEADLINE), "the half-close did not reach upstream")
            rest = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                rest += chunk
            self.assertEqual(rest, b"bye")

    def test_upgrade_h2c_is_not_forwarded(self):
        proxy = self.demo_proxy(steps=HOLD)
        reply = raw_exchange(proxy.port, b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, "
                             b"HTTP2-Settings, close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAA"
                             b"AAIAAAAA\r\n\r\n")
        self.assertEqual(reply.status, 200, reply)
        headers = {k.lower() for k, _ in reply.json()["headers"]}
        self.assertNotIn("upgrade", headers)
        self.assertNotIn("http2-settings", headers)


if __name__ == "__main__":
    unittest.main()
