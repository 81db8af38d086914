"""h2c upstreams and gRPC through an HTTP/1.1 client (docs/grpc.md): python3-grpcio servers
(generic handlers with raw-bytes serializers, no protoc) are the upstreams, `protocol: h2c`. A
chunked POST with content-type application/grpc and TE: trailers gets the grpc-status trailer
(and the server's trailing metadata) as a chunked trailer section; without TE: trailers the
trailers are dropped; an error status (UNAVAILABLE via context.abort) comes back in the trailer,
is counted in canary_proxy_grpc_requests_total and is bad for the analysis (a canary failing
that way is aborted); an h2c upstream that is down is a 502/503 with the connect error counted;
many requests reuse one h2c connection (peers counted at the server); a bad `protocol` is a
config error with its position."""

import os
import re
import selectors
import socket
import struct
import sys
import threading
import time
import unittest
from concurrent import futures

try:
    import grpc
    import h2.config
    import h2.connection
    import h2.events
except ImportError:
    # python3-grpcio and python3-h2 are Debian's, installed for /usr/bin/python3: run this
    # module there.
    SYSTEM = "/usr/bin/python3"
    if os.path.exists(SYSTEM) and os.path.realpath(sys.executable) != os.path.realpath(SYSTEM):
        sys.stdout.flush()
        argv = ([SYSTEM, os.path.abspath(__file__)] if __name__ == "__main__"
                else [SYSTEM, "-m", "unittest", "-v", __name__])
        os.execv(SYSTEM, argv)
    raise

from harness import DEADLINE, IO_TIMEOUT, E2ETestCase, closed_port, make_config, poll

NAME = "grpc"
# Every load loop is bounded in count and in time.
MAX_REQUESTS = 4000
MAX_SECONDS = 40.0


def identity(b):
    return b


class GrpcServer:
    """A grpcio server on 127.0.0.1:<free port>. /test.Echo/Unary answers the request prefixed
    with the server's name and trailing metadata x-served-by; /test.Echo/Stream streams
    int(request) messages; every `fail_every`-th unary call (0: none) and every call of
    /test.Echo/Fail abort with UNAVAILABLE. Counts the distinct peers
    (client address and port: one per TCP connection)."""

    def __init__(self, name, fail_every=0):
        self.name = name
        self.fail_every = fail_every
        self.calls = 0
        self.peers = set()
        self.lock = threading.Lock()
        self.release = threading.Event()  # ends the calls of /test.Echo/Slow
        handlers = {
            "Unary": grpc.unary_unary_rpc_method_handler(
                self._unary, request_deserializer=identity, response_serializer=identity),
            "Fail": grpc.unary_unary_rpc_method_handler(
                self._fail, request_deserializer=identity, response_serializer=identity),
            "Slow": grpc.unary_unary_rpc_method_handler(
                self._slow, request_deserializer=identity, response_serializer=identity),
            "Stream": grpc.unary_stream_rpc_method_handler(
                self._stream, request_deserializer=identity, response_serializer=identity),
        }
        # grpcio sets SO_REUSEPORT by default: a later bind to port 0 with SO_REUSEPORT (the
        # proxy's listeners) could then be given this very port and share its connections.
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8),
                                  options=(("grpc.so_reuseport", 0),))
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("test.Echo", handlers),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.endpoint = f"127.0.0.1:{self.port}"

    def _note(self, context):
        with self.lock:
            self.calls += 1
            self.peers.add(context.peer())
            return self.calls

    def _unary(self, request, context):
        n = self._note(context)
        if self.fail_every and n % self.fail_every == 0:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"{self.name} unavailable")
        context.set_trailing_metadata((("x-served-by", self.name),))
        return self.name.encode() + b":" + request

    def _stream(self, request, context):
        """int(request) messages "<name>:<i>", then trailing metadata x-served-by."""
        self._note(context)
        context.set_trailing_metadata((("x-served-by", self.name),))
        for i in range(int(request)):
            yield f"{self.name}:{i}".encode()

    def _slow(self, request, context):
        """Answers only once released (stop() does), at most after DEADLINE."""
        self._note(context)
        self.release.wait(DEADLINE)
        return request

    def _fail(self, request, context):
        self._note(context)
        context.abort(grpc.StatusCode.UNAVAILABLE, f"{self.name} is down")

    def stop(self):
        self.release.set()
        self.server.stop(grace=None).wait(DEADLINE)


class PlainH2Server:
    """A bare h2c server (python3-h2) in a thread: every request gets 200, content-type
    text/plain, the body "<method> <path> <request body length>" with a content-length when
    `with_length`, else none, and always the trailer x-checksum: 42 (whether or not the request
    said te: trailers). Records each request's headers."""

    def __init__(self, with_length=False):
        self.with_length = with_length
        self.requests = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = "127.0.0.1:%d" % self.listener.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        sel = selectors.DefaultSelector()
        sel.register(self.listener, selectors.EVENT_READ)
        conns = {}
        while not self.stopping:
            for key, _ in sel.select(0.05):
                if key.fileobj is self.listener:
                    sock, _ = self.listener.accept()
                    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
                    c.initiate_connection()
                    sock.sendall(c.data_to_send())
                    conns[sock] = (c, {})
                    sel.register(sock, selectors.EVENT_READ)
                    continue
                sock = key.fileobj
                c, streams = conns[sock]
                data = sock.recv(65536)
                if not data:
                    sel.unregister(sock)
                    sock.close()
                    del conns[sock]
                    continue
                for ev in c.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        hdrs = {k.decode(): v.decode() for k, v in ev.headers}
                        self.requests.append(hdrs)
                        streams[ev.stream_id] = [hdrs, 0]
                    elif isinstance(ev, h2.events.DataReceived):
                        streams[ev.stream_id][1] += len(ev.data)
                        c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.StreamEnded):
                        hdrs, n = streams.pop(ev.stream_id)
                        body = f"{hdrs[':method']} {hdrs[':path']} {n}".encode()
                        head = [(":status", "200"), ("content-type", "text/plain")]
                        if self.with_length:
                            head.append(("content-length", str(len(body))))
                        c.send_headers(ev.stream_id, head)
                        c.send_data(ev.stream_id, body)
                        c.send_headers(ev.stream_id, [("x-checksum", "42")], end_stream=True)
                sock.sendall(c.data_to_send())
        for sock in conns:
            sock.close()
        self.listener.close()

    def stop(self):
        self.stopping = True
        self.thread.join(DEADLINE)


def grpc_frame(payload):
    """A gRPC length-prefixed message: not compressed, 4-byte big-endian length."""
    return b"\x00" + struct.pack(">I", len(payload)) + payload


class Http1Client:
    """An HTTP/1.1 keep-alive client on a raw socket that keeps what http.client hides: the
    chunked trailer section."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        self.buf = b""

    def close(self):
        self.sock.close()

    def _fill(self):
        b = self.sock.recv(65536)
        if not b:
            raise ConnectionError("connection closed by the proxy")
        self.buf += b

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line.decode("latin-1")

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def grpc_call(self, path, payload, te_trailers=True, headers=None):
        """A chunked POST of one gRPC frame. Returns (status, headers, body, trailers), header
        and trailer names lower-cased."""
        body = grpc_frame(payload)
        head = [f"POST {path} HTTP/1.1", "Host: grpc.test", "Content-Type: application/grpc",
                "Transfer-Encoding: chunked"]
        if te_trailers:
            head.append("TE: trailers")
        for k, v in (headers or {}).items():
            head.append(f"{k}: {v}")
        data = ("\r\n".join(head) + "\r\n\r\n").encode()
        data += f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
        self.sock.sendall(data)
        return self.read_response()

    def read_response(self):
        status = int(self._line().split(" ")[1])
        headers = {}
        while True:
            line = self._line()
            if not line:
                break
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        body = b""
        trailers = {}
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int(self._line().split(";")[0], 16)
                if size == 0:
                    break
                body += self._take(size)
                self._take(2)
            while True:
                line = self._line()
                if not line:
                    break
                k, _, v = line.partition(":")
                trailers[k.strip().lower()] = v.strip()
        elif "content-length" in headers:
            body = self._take(int(headers["content-length"]))
        return status, headers, body, trailers


def unframe(body):
    """The payload of a body holding one gRPC message."""
    if len(body) < 5:
        raise AssertionError(f"no gRPC message in {body!r}")
    (n,) = struct.unpack(">I", body[1:5])
    return body[5:5 + n]


def h2c_config(upstreams, route, **kw):
    cfg = make_config(upstreams, [route], **kw)
    for u in cfg["upstreams"].values():
        u["protocol"] = "h2c"
    return cfg


def grpc_route(steps=None, canary=None, analysis=None):
    r = {"name": NAME, "path_prefix": "/", "upstream": "blue",
         "steps": steps if steps is not None else [{"setWeight": 0}, {"pause": {}}]}
    if canary:
        r["canary"] = canary
    if analysis:
        r["analysis"] = analysis
    return r


def metric(text, name, **labels):
    """The value of one series of the /metrics text (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', line[:line.rindex("}")]))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


class GrpcH2cTest(E2ETestCase):

    def server(self, name, fail_every=0):
        s = GrpcServer(name, fail_every)
        self.addCleanup(s.stop)
        return s

    def client(self, proxy):
        c = Http1Client(proxy.port)
        self.addCleanup(c.close)
        return c

    def test_unary_call_gets_message_and_grpc_status_trailer(self):
        blue = self.server("blue")
        proxy = self.start_proxy(h2c_config({"blue": blue.endpoint}, grpc_route()))
        status, headers, body, trailers = self.client(proxy).grpc_call("/test.Echo/Unary", b"hi")
        self.assertEqual(status, 200)
        self.assertEqual(headers.get("content-type"), "application/grpc")
        self.assertEqual(headers.get("transfer-encoding"), "chunked")
        self.assertEqual(unframe(body), b"blue:hi")
        self.assertEqual(trailers.get("grpc-status"), "0")
        self.assertEqual(trailers.get("x-served-by"), "blue")
        text = proxy.admin("GET", "/metrics").text
        self.assertEqual(metric(text, "canary_proxy_grpc_requests_total", route=NAME,
                                variant="stable", upstream="blue", grpc_status="0"), 1)

    def plain(self, with_length=False):
        s = PlainH2Server(with_length)
        self.addCleanup(s.stop)
        return s

    def test_trailers_only_for_te_trailers_clients(self):
        blue = self.plain()
        proxy = self.start_proxy(h2c_config({"blue": blue.endpoint}, grpc_route()))
        client = self.client(proxy)
        status, headers, body, trailers = client.grpc_call("/a?q=1", b"xyz", te_trailers=False)
        self.assertEqual(status, 200)
        self.assertEqual(body, b"POST /a?q=1 8")  # the 5-byte prefix and 3 bytes as DATA
        self.assertEqual(trailers, {})
        status, headers, body, trailers = client.grpc_call("/b", b"", te_trailers=True)
        self.assertEqual(body, b"POST /b 5")
        self.assertEqual(trailers, {"x-checksum": "42"})
        # The HTTP/2 request: :authority from Host, te only as "trailers", no connection field.
        first, second = blue.requests
        self.assertEqual(first[":authority"], "grpc.test")
        self.assertEqual(first[":scheme"], "http")
        self.assertNotIn("te", first)
        self.assertNotIn("transfer-encoding", first)
        self.assertNotIn("host", first)
        self.assertEqual(second["te"], "trailers")
        self.assertEqual(first["x-forwarded-proto"], "http")

    def test_length_delimited_response_and_get(self):
        blue = self.plain(with_length=True)
        proxy = self.start_proxy(h2c_config({"blue": blue.endpoint}, grpc_route()))
        r = proxy.get("/hello")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Length"), str(len(b"GET /hello 0")))
        self.assertEqual(r.text, "GET /hello 0")

    def test_error_status_in_trailer_and_counted(self):
        blue = self.server("blue")
        proxy = self.start_proxy(h2c_config({"blue": blue.endpoint}, grpc_route()))
        client = self.client(proxy)
        for _ in range(3):
            status, headers, body, trailers = client.grpc_call("/test.Echo/Fail", b"x")
            self.assertEqual(status, 200)
            # A trailers-only response: grpc-status travels in the head, the body is empty.
            got = trailers.get("grpc-status") or headers.get("grpc-status")
            self.assertEqual(got, "14", (headers, trailers))
            msg = trailers.get("grpc-message") or headers.get("grpc-message")
            self.assertEqual(msg, "blue is down")
        text = proxy.admin("GET", "/metrics").text
        self.assertEqual(metric(text, "canary_proxy_grpc_requests_total", route=NAME,
                                variant="stable", upstream="blue", grpc_status="14"), 3)
        self.assertEqual(metric(text, "canary_proxy_requests_total", route=NAME,
                                variant="stable", upstream="blue", code="200"), 3)

    def test_many_requests_share_one_h2c_connection(self):
        blue = self.server("blue")
        proxy = self.start_proxy(h2c_config({"blue": blue.endpoint}, grpc_route()))
        clients = [self.client(proxy) for _ in range(4)]
        for i in range(50):
            status, _, body, trailers = clients[i % 4].grpc_call("/test.Echo/Unary", b"%d" % i)
            self.assertEqual(status, 200)
            self.assertEqual(unframe(body), b"blue:%d" % i)
            self.assertEqual(trailers.get("grpc-status"), "0")
        self.assertEqual(blue.calls, 50)
        self.assertEqual(len(blue.peers), 1, blue.peers)

    def test_large_messages_both_ways_within_flow_control(self):
        # 3 MiB up and back: more than the 64 KiB default windows and the proxy's 256 KiB
        # receive window, so both directions only finish if WINDOW_UPDATEs flow.
        blue = self.server("blue")
        proxy = self.start_proxy(h2c_config({"blue": blue.endpoint}, grpc_route()))
        payload = bytes(range(256)) * (3 * 4096)
        status, _, body, trailers = self.client(proxy).grpc_call("/test.Echo/Unary", payload)
        self.assertEqual(status, 200)
        self.assertEqual(trailers.get("grpc-status"), "0")
        self.assertEqual(unframe(body), b"blue:" + payload)

    def test_h2c_upstream_down(self):
        down = f"127.0.0.1:{closed_port()}"
        proxy = self.start_proxy(h2c_config({"blue": down}, grpc_route()))
        status, _, body, _ = self.client(proxy).grpc_call("/test.Echo/Unary", b"x")
        self.assertEqual(status, 503)  # every endpoint refusing, as on HTTP/1.1
        text = proxy.admin("GET", "/metrics").text
        self.assertGreaterEqual(metric(text, "canary_proxy_upstream_errors_total",
                                       upstream="blue", reason="connect"), 1)

    def test_upstream_response_timeout_is_504(self):
        blue = self.server("blue")
        proxy = self.start_proxy(h2c_config({"blue": blue.endpoint}, grpc_route(),
                                            timeouts={"upstream_response": "300ms"}))
        status, _, body, _ = self.client(proxy).grpc_call("/test.Echo/Slow", b"x")
        self.assertEqual(status, 504)
        text = proxy.admin("GET", "/metrics").text
        self.assertEqual(metric(text, "canary_proxy_upstream_errors_total", upstream="blue",
                                reason="timeout"), 1)
        # The stream was reset, the connection lives on for the next request.
        self.assertEqual(self.client(proxy).grpc_call("/test.Echo/Unary", b"y")[0], 200)
        self.assertEqual(len(blue.peers), 1, blue.peers)

    def test_h2c_upstream_dies_mid_connection(self):
        blue = self.server("blue")
        proxy = self.start_proxy(h2c_config({"blue": blue.endpoint}, grpc_route()))
        client = self.client(proxy)
        self.assertEqual(client.grpc_call("/test.Echo/Unary", b"a")[0], 200)
        blue.stop()
        status, _, _, _ = self.client(proxy).grpc_call("/test.Echo/Unary", b"b")
        self.assertIn(status, (502, 503))

    def test_bad_grpc_status_is_bad_for_the_analysis(self):
        blue = self.server("blue")
        green = self.server("green", fail_every=2)  # half its calls: UNAVAILABLE
        an = {"interval": "500ms", "inconclusive_limit": 1000,
              "metrics": [{"name": "errors", "builtin": "error_rate_vs_stable",
                           "min_requests": 30}]}
        proxy = self.start_proxy(h2c_config(
            {"blue": blue.endpoint, "green": green.endpoint},
            grpc_route(steps=[{"setWeight": 50}, {"pause": {}}], analysis=an)))
        proxy.op(NAME, "upstream", {"upstream": "green"})
        client = self.client(proxy)
        start = time.monotonic()
        s = proxy.status(NAME)
        for i in range(MAX_REQUESTS):
            status, _, _, _ = client.grpc_call("/test.Echo/Unary", b"x")
            self.assertEqual(status, 200)
            if i % 50 == 0:
                s = proxy.status(NAME)
                if s["phase"] == "Degraded" or time.monotonic() - start > MAX_SECONDS:
                    break
        s = proxy.status(NAME)
        self.assertEqual(s["phase"], "Degraded", s)
        self.assertTrue(s["message"].startswith("AnalysisFailed: errors"), s["message"])
        text = proxy.admin("GET", "/metrics").text
        self.assertGreater(metric(text, "canary_proxy_grpc_requests_total", route=NAME,
                                  variant="canary", upstream="green", grpc_status="14"), 0)

    def test_bad_protocol_is_a_config_error(self):
        cfg = h2c_config({"blue": "127.0.0.1:9"}, grpc_route())
        cfg["upstreams"]["blue"]["protocol"] = "h3"
        proxy = self.new_proxy(cfg)
        rc, err = proxy.start_expect_failure()
        self.assertNotEqual(rc, 0)
        self.assertRegex(err, r"canary-proxy\.yaml:\d+:\d+: .*bad protocol \"h3\"")


if __name__ == "__main__":
    unittest.main()
