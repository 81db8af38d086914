"""What an upstream may do between the request and the final response: interim (1xx) responses
are relayed under the response-head deadline and a bound (RFC 9110 §15.2), and a final response
sent before the request body was read (RFC 9112 §9.5) reaches the client instead of a 502."""

import threading
import time
import unittest

from hardening import SLACK, HardeningTestCase

GET = "GET / HTTP/1.1\r\nHost: a.example\r\n"


def interim_loop(status_line, pause):
    """A handler that answers with interim responses only, every `pause` seconds, until the
    proxy drops the connection (bounded: 15 s or the end of the test)."""
    head = f"HTTP/1.1 {status_line}\r\nLink: </style.css>; rel=preload\r\n\r\n".encode()

    def handler(conn, req):
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not conn.fake.released.is_set():
            try:
                conn.send(head)
            except OSError:
                break
            if pause:
                time.sleep(pause)
        return False
    return handler


class InterimResponsesTest(HardeningTestCase):

    def test_interim_responses_do_not_extend_the_response_deadline(self):
        # One 102 every 100 ms: each is a sign of life, none is the response. The response-head
        # deadline covers the whole head phase, so the client still gets its 504.
        fake = self.fake_upstream(interim_loop("102 Processing", 0.1))
        proxy = self.proxy_for({"blue": fake.endpoint}, timeouts={"upstream_response": "1s"})
        c = self.raw_client(proxy.port)
        c.send(GET + "\r\n")
        r = c.response(timeout=1.0 + SLACK + 2)  # skips the 102s; the unfixed proxy never ends
        self.assertEqual(r.status, 504, r)
        fake.wait_closed(1, timeout=3)  # the proxy gave its upstream connection up
        self.assertEqual(fake.head_count(), 1, "a timed-out request must not be retried")
        self.assertAlive(proxy)

    def test_an_interim_response_flood_is_cut_off_with_502(self):
        # 103 in a tight loop: relaying them until the deadline would burn a CPU and the
        # client's bandwidth; past a bound the upstream is broken.
        fake = self.fake_upstream(interim_loop("103 Early Hints", 0))
        proxy = self.proxy_for({"blue": fake.endpoint}, timeouts={"upstream_response": "10s"})
        c = self.raw_client(proxy.port)
        c.send(GET + "\r\n")
        interim = 0
        deadline = time.monotonic() + 8
        while True:
            status, _, raw = c.head(timeout=max(0.1, deadline - time.monotonic()))
            if status != 103:
                break
            interim += 1
            self.assertLess(interim, 1000, "the proxy relays interim responses without bound")
        self.assertEqual(status, 502, raw)
        self.assertGreater(interim, 0)  # the ones within the bound were relayed
        self.assertTrue(c.drain_to_eof(timeout=5), "the client connection stays open")
        fake.wait_closed(1, timeout=5)
        self.assertAlive(proxy)


class EarlyResponseTest(HardeningTestCase):

    def test_413_before_a_5_mb_body_reaches_the_client(self):
        # The upstream refuses after the head and closes over the unread body (RST): the
        # proxy's body write fails, but the 413 is already in its receive queue.
        def refuse(conn, req):
            conn.reply(413, "too large here", {"Connection": "close"},
                       reason="Content Too Large")
            return False
        fake = self.fake_upstream(head_handler=refuse)
        proxy = self.proxy_for({"blue": fake.endpoint},
                               limits={"max_request_body_bytes": 1 << 30})
        c = self.raw_client(proxy.port, timeout=30)
        total = 5 * 1024 * 1024
        # Body bytes that would read as requests if the proxy parsed the rest of the body.
        line = b"GET /smuggled HTTP/1.1\r\nHost: a.example\r\n\r\n"
        body = (line * (total // len(line) + 1))[:total]
        c.send(f"POST /upload HTTP/1.1\r\nHost: a.example\r\nContent-Length: {total}\r\n\r\n")

        def send_body():
            try:
                c.sock.sendall(body)
            except OSError:
                pass  # the proxy stopped reading and closed: expected
        sender = threading.Thread(target=send_body, daemon=True)
        sender.start()
        r = c.response(timeout=20)
        self.assertEqual((r.status, r.body), (413, b"too large here"), r)
        self.assertEqual(r.header("Connection"), "close")
        self.assertTrue(c.closed(timeout=10), "the connection must close after an early response")
        sender.join(20)
        self.assertEqual([q.target for q in fake.heads], ["/upload"])
        self.assertAlive(proxy)


if __name__ == "__main__":
    unittest.main()
