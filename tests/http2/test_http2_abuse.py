"""HTTP/2 abuse bounds (docs/http2.md) with python3-h2 on prior-knowledge connections: rapid
reset, CONTINUATION, SETTINGS and PING floods end the connection (GOAWAY, then close) within
a bounded number of frames; an HPACK bomb is refused (431) without ending the connection;
streams over max_concurrent_streams are refused (REFUSED_STREAM); and while each abuse runs,
another connection is served. Also: X-Canary forces some streams of one connection, and a
drain sends GOAWAY while an open stream finishes. Needs /usr/bin/python3 with python3-h2."""

import os
import re
import socket
import socketserver
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))

from harness import DEADLINE, E2ETestCase, make_config, poll, route  # noqa: E402

try:
    import h2.config
    import h2.connection
    import h2.events
    import h2.settings
    HAVE_H2 = True
except ImportError:  # the suite is registered with /usr/bin/python3, which has python3-h2
    HAVE_H2 = False

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
ENHANCE_YOUR_CALM = 0xB
REFUSED_STREAM = 0x7


def frame(ftype, flags, stream_id, payload=b""):
    """One raw frame (RFC 9113 §4.1)."""
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream_id) + payload


class Client:
    """A prior-knowledge HTTP/2 client on one connection (python3-h2)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.flush()
        self.events = []
        self.closed = False

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path, headers=(), body=None, end=True):
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, [(":method", "POST" if body is not None else "GET"),
                                     (":scheme", "http"), (":authority", "localhost"),
                                     (":path", path), *headers],
                               end_stream=end and body is None)
        if body is not None:
            self.conn.send_data(sid, body, end_stream=end)
        self.flush()
        return sid

    def pump(self):
        """Reads once; returns False when the connection closed."""
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            data = b""
        if not data:
            self.closed = True
            return False
        try:
            evs = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.closed = True
            return False
        self.events.extend(evs)
        for e in evs:
            if isinstance(e, h2.events.DataReceived):
                self.conn.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
        self.flush()
        return True

    def response(self, sid):
        """(status, body) of stream `sid`, or (None, reset code)."""
        deadline = time.monotonic() + DEADLINE
        status, body = None, b""
        seen = 0
        while time.monotonic() < deadline:
            for e in self.events[seen:]:
                if getattr(e, "stream_id", None) != sid:
                    continue
                if isinstance(e, h2.events.ResponseReceived):
                    status = int(dict(e.headers)[b":status"])
                elif isinstance(e, h2.events.DataReceived):
                    body += e.data
                elif isinstance(e, h2.events.StreamEnded):
                    return status, body
                elif isinstance(e, h2.events.StreamReset):
                    return None, e.error_code
            seen = len(self.events)
            if not self.pump():
                raise AssertionError(f"connection closed before stream {sid} ended")
        raise AssertionError(f"stream {sid}: no answer within {DEADLINE}s")

    def goaway(self):
        for e in self.events:
            if isinstance(e, h2.events.ConnectionTerminated):
                return e
        return None

    def close(self):
        self.sock.close()


def read_until_closed(sock, limit=64 << 20):
    """Every byte until the peer closes (bounded); the raw frames, for a GOAWAY search."""
    data = b""
    sock.settimeout(DEADLINE)
    while len(data) < limit:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        data += chunk
    return data


def split_frames(data):
    """Raw server bytes as (type, flags, stream id, payload) frames."""
    out = []
    i = 0
    while i + 9 <= len(data):
        n = int.from_bytes(data[i:i + 3], "big")
        sid = int.from_bytes(data[i + 5:i + 9], "big") & 0x7fffffff
        out.append((data[i + 3], data[i + 4], sid, data[i + 9:i + 9 + n]))
        i += 9 + n
    return out


def goaway_codes(data):
    """The error codes of the GOAWAY frames in raw server bytes (after our SETTINGS)."""
    codes = []
    i = 0
    while i + 9 <= len(data):
        n = int.from_bytes(data[i:i + 3], "big")
        if data[i + 3] == 0x7 and i + 9 + 8 <= len(data):
            codes.append(int.from_bytes(data[i + 13:i + 17], "big"))
        i += 9 + n
    return codes


@unittest.skipUnless(HAVE_H2, "python3-h2 is needed (/usr/bin/python3)")
class Http2AbuseTest(E2ETestCase):

    def setUp(self):
        super().setUp()
        self.blue, self.green = self.blue_green()

    def start(self, http2=None, steps=None, timeouts=None):
        cfg = make_config({"blue": self.blue.endpoint, "green": self.green.endpoint},
                          [route(steps=steps or [{"setWeight": 0}, {"pause": {}}])],
                          timeouts=timeouts)
        cfg["http2"] = {"h2c": True, **(http2 or {})}
        self.proxy = self.start_proxy(cfg)
        return self.proxy

    def assert_still_serving(self):
        c = Client(self.proxy.port)
        try:
            self.assertEqual(c.response(c.request("/color")), (200, b'"blue"'))
        finally:
            c.close()

    def raw(self):
        s = socket.create_connection(("127.0.0.1", self.proxy.port), timeout=DEADLINE)
        s.sendall(PREFACE + frame(0x4, 0, 0))  # the preface and an empty SETTINGS
        return s

    def headers_block(self, path="/color"):
        enc = h2.connection.H2Connection().encoder
        return enc.encode([(":method", "GET"), (":scheme", "http"),
                           (":authority", "localhost"), (":path", path)])

    def test_rapid_reset_ends_the_connection_with_enhance_your_calm(self):
        self.start()
        s = self.raw()
        block = self.headers_block()
        # HEADERS then RST_STREAM(CANCEL) at once, for 1000 streams: the guard's bound is 100
        # resets per second (and 10 % of the streams).
        burst = b"".join(frame(0x1, 0x5, 2 * i + 1, block) +
                         frame(0x3, 0, 2 * i + 1, struct.pack(">I", 0x8)) for i in range(1000))
        try:
            s.sendall(burst)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = read_until_closed(s)
        s.close()
        self.assertIn(ENHANCE_YOUR_CALM, goaway_codes(data))
        self.assert_still_serving()

    def test_continuation_flood_is_cut(self):
        self.start()
        s = self.raw()
        block = self.headers_block()
        # HEADERS without END_HEADERS, then CONTINUATION frames that never end the block.
        flood = frame(0x1, 0x1, 1, block) + b"".join(
            frame(0x9, 0, 1, b"\x40\x01a\x01b") for _ in range(10000))
        try:
            s.sendall(flood)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = read_until_closed(s)
        s.close()
        self.assertTrue(goaway_codes(data), "a GOAWAY before the close")
        self.assertNotIn(b":status", data)
        self.assert_still_serving()

    def test_settings_flood_is_cut(self):
        self.start()
        s = self.raw()
        try:
            for _ in range(20):  # 200 000 SETTINGS frames at most; the bound is 1000 unsent ACKs
                s.sendall(frame(0x4, 0, 0) * 10000)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = read_until_closed(s)
        s.close()
        self.assertTrue(goaway_codes(data), "a GOAWAY before the close")
        self.assert_still_serving()

    def test_ping_flood_is_cut(self):
        self.start()
        s = self.raw()
        try:
            for _ in range(20):
                s.sendall(frame(0x6, 0, 0, b"12345678") * 10000)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = read_until_closed(s)
        s.close()
        self.assertTrue(goaway_codes(data), "a GOAWAY before the close")
        self.assert_still_serving()

    def test_hpack_bomb_is_refused_and_the_connection_lives(self):
        self.start()
        c = Client(self.proxy.port)
        self.addCleanup(c.close)
        # A 4000-byte field enters the dynamic table (RFC 7541 §6.2.1) and 2000 more copies
        # of it are one-byte references (python-h2's encoder indexes it): 8 MB of decoded
        # fields from ~6 KB on the wire.
        big = "x" * 4000
        sid = c.request("/color", headers=[("bomb", big)] * 2001)
        status, _ = c.response(sid)
        self.assertEqual(status, 431)
        # The proxy's own 431 (the backend would answer one too, had the field list reached it).
        text = self.proxy.admin("GET", "/metrics").text
        self.assertIn('canary_proxy_local_replies_total{code="431"} 1', text)
        # The same connection still serves.
        self.assertEqual(c.response(c.request("/color")), (200, b'"blue"'))

    def test_streams_over_the_limit_are_refused(self):
        self.start(http2={"max_concurrent_streams": 2})
        c = Client(self.proxy.port)
        self.addCleanup(c.close)
        # A client that ignores SETTINGS_MAX_CONCURRENT_STREAMS: four streams whose bodies
        # never end stay open; those past two are refused.
        c.conn.local_settings.max_concurrent_streams = 100
        c.conn.remote_settings.max_concurrent_streams = 100
        sids = [c.request("/echo", body=b"x", end=False) for _ in range(4)]
        resets = []
        deadline = time.monotonic() + DEADLINE
        while len(resets) < 2 and time.monotonic() < deadline:
            resets = [e for e in c.events if isinstance(e, h2.events.StreamReset)]
            if len(resets) < 2 and not c.pump():
                break
        self.assertEqual(sorted(e.stream_id for e in resets), sids[2:])
        self.assertTrue(all(e.error_code == REFUSED_STREAM for e in resets), resets)
        self.assert_still_serving()

    def test_x_canary_forces_some_streams_of_one_connection(self):
        self.start()
        self.proxy.op("canary-demo", "upstream", {"upstream": "green"})
        c = Client(self.proxy.port)
        self.addCleanup(c.close)
        forced = [i % 3 == 0 for i in range(9)]
        sids = [c.request("/color", headers=[("x-canary", "always")] if f else [])
                for f in forced]
        got = [c.response(sid)[1] for sid in sids]
        self.assertEqual(got, [b'"green"' if f else b'"blue"' for f in forced])

    def test_an_idle_connection_gets_goaway_and_closes(self):
        self.start(timeouts={"client_idle": "1s"})
        c = Client(self.proxy.port)
        self.addCleanup(c.close)
        self.assertEqual(c.response(c.request("/color")), (200, b'"blue"'))
        # Nothing more from the client: after client_idle, GOAWAY (NO_ERROR) and the close.
        frames = split_frames(read_until_closed(c.sock))
        goaway = [p for t, _, _, p in frames if t == 0x7]
        self.assertEqual(len(goaway), 1, frames)
        self.assertEqual(int.from_bytes(goaway[0][4:8], "big"), 0)

    def test_a_client_that_stops_reading_is_cut_after_client_idle(self):
        # Enough concurrent streams that none is refused: every response is owed.
        self.start(http2={"max_concurrent_streams": 4000}, timeouts={"client_idle": "1s"})
        s = socket.socket()
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", self.proxy.port))
        # Windows wide open (RFC 9113 §6.9), then 2000 requests for a 9 KB page, never read:
        # 18 MB of responses, more than the socket buffers hold, so the proxy's write blocks.
        s.sendall(PREFACE + frame(0x4, 0, 0, struct.pack(">HI", 0x4, 0x7fffffff)) +
                  frame(0x8, 0, 0, struct.pack(">I", 0x7fffffff - 65535)))
        enc = h2.connection.H2Connection().encoder
        block = enc.encode([(":method", "GET"), (":scheme", "http"),
                            (":authority", "localhost"), (":path", "/")])
        # The same block again: the encoder's table now makes it 4 bytes, as the server's
        # decoder expects after the first.
        again = enc.encode([(":method", "GET"), (":scheme", "http"),
                            (":authority", "localhost"), (":path", "/")])
        s.sendall(frame(0x1, 0x5, 1, block))
        s.settimeout(0.5)
        try:
            for i in range(1, 2000):
                s.sendall(frame(0x1, 0x5, 2 * i + 1, again))
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            pass

        def active():
            text = self.proxy.admin("GET", "/metrics").text
            m = re.search(r"^canary_proxy_connections_active(?:\{[^}]*\})? (\S+)$", text, re.M)
            return float(m.group(1)) if m else 0.0
        # Without reading a byte: the proxy closes its side within about client_idle.
        poll(lambda: active() == 0, what="the stalled connection closed")

    def test_a_pooled_connection_closed_by_the_upstream_is_retried(self):
        # An upstream that answers one request per connection with keep-alive, then closes
        # it: the proxy's pooled connection is dead when the next stream takes it.
        class OneShot(socketserver.BaseRequestHandler):
            def handle(self):
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = self.request.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), OneShot)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        self.blue.endpoint = f"127.0.0.1:{server.server_address[1]}"
        self.start()
        c = Client(self.proxy.port)
        self.addCleanup(c.close)
        # Three streams, one after another, on one connection.
        for _ in range(3):
            self.assertEqual(c.response(c.request("/x")), (200, b"ok"))

    def test_drain_sends_goaway_and_finishes_open_streams(self):
        self.start(timeouts={"drain": "10s"})
        # Raw frames: python-h2 ignores every frame after a GOAWAY, and the point here is the
        # response that follows it. A stream the upstream answers after 1 s is open when
        # SIGTERM starts the drain.
        s = self.raw()
        self.addCleanup(s.close)
        body = b'[{"color":"blue","delayLength":1}]'
        enc = h2.connection.H2Connection().encoder
        block = enc.encode([(":method", "POST"), (":scheme", "http"),
                            (":authority", "localhost"), (":path", "/color"),
                            ("content-length", str(len(body)))])
        s.sendall(frame(0x1, 0x4, 1, block) + frame(0x0, 0x1, 1, body))
        poll(lambda: "canary_proxy_http2_streams_total" in
             self.proxy.admin("GET", "/metrics").text, what="the stream routed")
        self.proxy.process.signal(15)
        frames = split_frames(read_until_closed(s))
        kinds = [(t, sid) for t, _, sid, _ in frames if t in (0x0, 0x1, 0x7)]
        goaway = [p for t, _, _, p in frames if t == 0x7]
        self.assertEqual(len(goaway), 1, frames)
        self.assertEqual(int.from_bytes(goaway[0][:4], "big"), 1)  # last stream id
        self.assertEqual(int.from_bytes(goaway[0][4:8], "big"), 0)  # NO_ERROR
        # GOAWAY first, then the open stream's response, whole.
        self.assertEqual(kinds[0], (0x7, 0))
        self.assertIn((0x1, 1), kinds[1:])
        data = b"".join(p for t, _, sid, p in frames if t == 0x0 and sid == 1)
        self.assertEqual(data, b'"blue"')
        self.assertEqual(self.proxy.process.wait(DEADLINE), 0)


if __name__ == "__main__":
    unittest.main()
