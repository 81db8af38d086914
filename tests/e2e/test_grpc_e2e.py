"""gRPC end to end (docs/grpc.md): python3-grpcio clients talk HTTP/2 to the proxy, by prior
knowledge on the plain listener (http2.h2c) and over TLS with ALPN h2 (a test CA's certificate),
and the proxy forwards each stream to grpcio servers blue and green behind `protocol: h2c`.
Unary and server-streaming calls come back whole with their trailing metadata, `x-canary:
always` metadata reaches green, error statuses and their messages are intact, and the streams
of one channel (one connection) are split exactly by the weight. Streams are full duplex: a
bidirectional call whose client sends each message only after the reply to the previous one (and
pauses past client_body_idle and upstream_response between two) and a client-streaming call the
server answers before the client ends its side both complete."""

import os
import sys
import threading
import time
import unittest
from concurrent import futures

try:
    import grpc
except ImportError:
    # python3-grpcio is Debian's, installed for /usr/bin/python3: run this module there.
    SYSTEM = "/usr/bin/python3"
    if os.path.exists(SYSTEM) and os.path.realpath(sys.executable) != os.path.realpath(SYSTEM):
        sys.stdout.flush()
        argv = ([SYSTEM, os.path.abspath(__file__)] if __name__ == "__main__"
                else [SYSTEM, "-m", "unittest", "-v", __name__])
        os.execv(SYSTEM, argv)
    raise

from harness import DEADLINE, E2ETestCase, make_config
from test_grpc_h2c import GrpcServer, identity, metric
from test_tls import CA, TlsProxy

NAME = "grpc"
# A full-duplex call that deadlocks fails at this client deadline instead of hanging.
CALL_DEADLINE = 5.0
# Longer than client_body_idle and upstream_response below: the silence of a stream whose two
# sides wait on each other must not be cut.
PAUSE = 1.5
BODY_LIMIT = 64 * 1024


class DuplexServer:
    """A grpcio server for /test.Duplex/: Chat (bidirectional) answers each message as it comes
    with "duplex:<message>"; Collect (client streaming) answers the messages joined by "," once
    the client ends its side or sends b"stop" (then without waiting for the client's end)."""

    def __init__(self):
        handlers = {
            "Chat": grpc.stream_stream_rpc_method_handler(
                self._chat, request_deserializer=identity, response_serializer=identity),
            "Collect": grpc.stream_unary_rpc_method_handler(
                self._collect, request_deserializer=identity, response_serializer=identity),
        }
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                                  options=(("grpc.so_reuseport", 0),))
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("test.Duplex", handlers),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.endpoint = f"127.0.0.1:{self.port}"

    def _chat(self, requests, context):
        for r in requests:
            yield b"duplex:" + r

    def _collect(self, requests, context):
        got = []
        for r in requests:
            if r == b"stop":
                break
            got.append(r)
        return b",".join(got)

    def stop(self):
        self.server.stop(grace=None).wait(DEADLINE)


class GrpcEndToEndTest(E2ETestCase):

    def setUp(self):
        super().setUp()
        self.ca = CA(self.tmp)
        self.cert, self.key = self.ca.issue("site", "localhost", ["localhost"])
        self.blue = GrpcServer("blue")
        self.addCleanup(self.blue.stop)
        self.green = GrpcServer("green")
        self.addCleanup(self.green.stop)
        self.duplex = DuplexServer()
        self.addCleanup(self.duplex.stop)
        cfg = make_config({"blue": self.blue.endpoint, "green": self.green.endpoint,
                           "duplex": self.duplex.endpoint},
                          [{"name": NAME, "path_prefix": "/", "upstream": "blue",
                            "steps": [{"setWeight": 0}, {"pause": {}}]},
                           {"name": "duplex", "path_prefix": "/test.Duplex/",
                            "upstream": "duplex", "steps": []}])
        for u in cfg["upstreams"].values():
            u["protocol"] = "h2c"
        cfg["timeouts"]["upstream_response"] = "500ms"  # /test.Echo/Slow never answers in time
        cfg["timeouts"]["client_body_idle"] = "1s"
        cfg["limits"] = {"max_request_body_bytes": BODY_LIMIT}
        cfg["http2"] = {"h2c": True}
        cfg["tls"] = {"listen": "127.0.0.1:0",
                      "certificates": [{"cert": self.cert, "key": self.key}]}
        self.proxy = TlsProxy(self.tmp, cfg)
        self.addCleanup(self._dump_logs_on_failure, self.proxy)
        self.addCleanup(self.proxy.stop)
        self.proxy.start()
        self.proxy.op(NAME, "upstream", {"upstream": "green"})

    def channels(self):
        """A prior-knowledge channel to the plain listener and a TLS (ALPN h2) one."""
        plain = grpc.insecure_channel(f"127.0.0.1:{self.proxy.port}")
        with open(self.ca.cert, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        tls = grpc.secure_channel(f"127.0.0.1:{self.proxy.tls_port}", creds,
                                  options=(("grpc.ssl_target_name_override", "localhost"),))
        for c in (plain, tls):
            self.addCleanup(c.close)
        return {"h2c": plain, "tls": tls}

    def unary(self, channel, method="Unary"):
        return channel.unary_unary(f"/test.Echo/{method}", request_serializer=identity,
                                   response_deserializer=identity)

    def test_unary_and_streaming_calls_with_trailing_metadata(self):
        for how, ch in self.channels().items():
            with self.subTest(how):
                reply, call = self.unary(ch).with_call(b"hi", timeout=DEADLINE)
                self.assertEqual(reply, b"blue:hi")
                self.assertEqual(call.code(), grpc.StatusCode.OK)
                self.assertIn(("x-served-by", "blue"), tuple(call.trailing_metadata()))
                stream = ch.unary_stream("/test.Echo/Stream", request_serializer=identity,
                                         response_deserializer=identity)(b"5", timeout=DEADLINE)
                self.assertEqual(list(stream), [b"blue:%d" % i for i in range(5)])
                self.assertEqual(stream.code(), grpc.StatusCode.OK)
                self.assertIn(("x-served-by", "blue"), tuple(stream.trailing_metadata()))

    def test_x_canary_metadata_reaches_green(self):
        for how, ch in self.channels().items():
            with self.subTest(how):
                reply, call = self.unary(ch).with_call(
                    b"q", metadata=(("x-canary", "always"),), timeout=DEADLINE)
                self.assertEqual(reply, b"green:q")
                self.assertIn(("x-served-by", "green"), tuple(call.trailing_metadata()))

    def test_error_status_and_message_intact_and_counted(self):
        for how, ch in self.channels().items():
            with self.subTest(how):
                with self.assertRaises(grpc.RpcError) as e:
                    self.unary(ch, "Fail")(b"x", timeout=DEADLINE)
                self.assertEqual(e.exception.code(), grpc.StatusCode.UNAVAILABLE)
                self.assertEqual(e.exception.details(), "blue is down")
        text = self.proxy.admin("GET", "/metrics").text
        self.assertEqual(metric(text, "canary_proxy_grpc_requests_total", route=NAME,
                                variant="stable", upstream="blue", grpc_status="14"), 2)

    def test_upstream_timeout_is_a_504_the_client_sees_as_unavailable(self):
        for how, ch in self.channels().items():
            with self.subTest(how):
                with self.assertRaises(grpc.RpcError) as e:
                    self.unary(ch, "Slow")(b"x", timeout=DEADLINE)
                # The proxy's 504 on the stream; gRPC maps HTTP 504 to UNAVAILABLE.
                self.assertEqual(e.exception.code(), grpc.StatusCode.UNAVAILABLE)
                self.assertEqual(self.unary(ch)(b"z", timeout=DEADLINE), b"blue:z")
        text = self.proxy.admin("GET", "/metrics").text
        self.assertEqual(metric(text, "canary_proxy_upstream_errors_total", upstream="blue",
                                reason="timeout"), 2)

    def test_streams_of_one_channel_split_exactly_by_weight(self):
        # Weight 20, smooth WRR on the one worker: 100 calls on one connection are 80 stable
        # and 20 canary exactly, over both listeners.
        self.proxy.op(NAME, "weight", {"weight": 20})
        for how, ch in self.channels().items():
            with self.subTest(how):
                stub = self.unary(ch)
                served = [stub(b"w", timeout=DEADLINE).split(b":")[0] for _ in range(100)]
                self.assertEqual((served.count(b"blue"), served.count(b"green")), (80, 20))
        # 200 streams from two client connections: one h2c connection to each server.
        self.assertEqual(len(self.blue.peers), 1, self.blue.peers)
        self.assertEqual(len(self.green.peers), 1, self.green.peers)

    def test_bidirectional_stream_each_message_after_the_previous_reply(self):
        for how, ch in self.channels().items():
            with self.subTest(how):
                replies = []
                got_reply = threading.Semaphore(0)

                def requests():
                    for i in range(5):
                        # Message i only once reply i-1 is in: a proxy that holds the response
                        # until the request ends never lets this call finish.
                        if i and not got_reply.acquire(timeout=CALL_DEADLINE):
                            return
                        if i == 3:
                            time.sleep(PAUSE)  # both sides silent past both idle timeouts
                        yield b"m%d" % i

                call = ch.stream_stream("/test.Duplex/Chat", request_serializer=identity,
                                        response_deserializer=identity)(
                    requests(), timeout=CALL_DEADLINE + PAUSE)
                try:
                    for r in call:
                        replies.append(r)
                        got_reply.release()
                except grpc.RpcError as e:
                    self.fail(f"{e.code()}: {e.details()} after {replies}")
                self.assertEqual(replies, [b"duplex:m%d" % i for i in range(5)])
                self.assertEqual(call.code(), grpc.StatusCode.OK)

    def test_client_streaming_answered_whole_and_before_the_client_ends(self):
        for how, ch in self.channels().items():
            with self.subTest(how):
                collect = ch.stream_unary("/test.Duplex/Collect", request_serializer=identity,
                                          response_deserializer=identity)
                self.assertEqual(collect(iter([b"a", b"b", b"c"]), timeout=CALL_DEADLINE),
                                 b"a,b,c")
                answered = threading.Event()

                def requests():
                    yield from (b"x", b"y", b"stop")
                    # Keeps the request side open until the answer is in (bounded).
                    answered.wait(CALL_DEADLINE)

                fut = collect.future(requests(), timeout=CALL_DEADLINE)
                try:
                    self.assertEqual(fut.result(), b"x,y")
                except grpc.RpcError as e:
                    self.fail(f"{e.code()}: {e.details()}")
                finally:
                    answered.set()

    def test_client_stream_over_the_body_limit_is_413(self):
        # The body goes to the upstream beside the response: the limit still holds (a 413 on the
        # stream, the upstream's stream reset) and the channel serves the next call.
        big = b"b" * (BODY_LIMIT // 2)
        for how, ch in self.channels().items():
            with self.subTest(how):
                collect = ch.stream_unary("/test.Duplex/Collect", request_serializer=identity,
                                          response_deserializer=identity)
                with self.assertRaises(grpc.RpcError) as e:
                    collect(iter([big, big, big]), timeout=CALL_DEADLINE)
                # The 413 head, then RST_STREAM CANCEL: grpcio reports either.
                self.assertNotEqual(e.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
                self.assertEqual(collect(iter([b"ok"]), timeout=CALL_DEADLINE), b"ok")
        text = self.proxy.admin("GET", "/metrics").text
        self.assertEqual(metric(text, "canary_proxy_local_replies_total", code="413"), 2)
        # Not the upstream's fault: no upstream error of any reason.
        self.assertFalse([line for line in text.splitlines()
                          if line.startswith("canary_proxy_upstream_errors_total{")
                          and 'upstream="duplex"' in line and not line.endswith(" 0")], text)


if __name__ == "__main__":
    unittest.main()
