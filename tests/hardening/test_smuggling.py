"""Request smuggling and framing (see docs/architecture.md#data-plane-rules): every
ambiguous request shape is refused with its status, the connection is closed, and the upstream never
gets a request it could act on; accepted shapes reach the upstream re-framed in canonical form; bad
framing from an upstream is a 502 and its connection is not reused."""

import sys
import unittest

from hardening import HardeningTestCase, RawClient, exchange

POST = "POST /up HTTP/1.1\r\nHost: a.example\r\n"
GET = "GET / HTTP/1.1\r\nHost: a.example\r\n"
ABC = "3\r\nabc\r\n0\r\n\r\n"

# (name, raw request, expected status). Refused at the head: the upstream sees nothing at all.
HEAD_SHAPES = [
    ("cl_then_te_chunked", POST + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n" + ABC, 400),
    ("te_chunked_then_cl", POST + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n" + ABC, 400),
    ("te_gzip_then_cl", POST + "Transfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc", 400),
    ("cl_then_te_gzip", POST + "Content-Length: 3\r\nTransfer-Encoding: gzip\r\n\r\nabc", 400),
    ("cl_1_and_cl_3", POST + "Content-Length: 1\r\nContent-Length: 3\r\n\r\nabc", 400),
    ("cl_3_and_cl_3", POST + "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400),
    ("cl_list_3_3", POST + "Content-Length: 3, 3\r\n\r\nabc", 400),
    ("cl_list_1_3", POST + "Content-Length: 1, 3\r\n\r\nabc", 400),
    ("cl_plus", POST + "Content-Length: +3\r\n\r\nabc", 400),
    ("cl_empty", POST + "Content-Length: \r\n\r\nabc", 400),
    ("cl_hex", POST + "Content-Length: 0x3\r\n\r\nabc", 400),
    ("cl_negative", POST + "Content-Length: -3\r\n\r\nabc", 400),
    ("cl_letters", POST + "Content-Length: 3a\r\n\r\nabc", 400),
    ("cl_overflow", POST + "Content-Length: 99999999999999999999999\r\n\r\nabc", 400),
    ("te_gzip", POST + "Transfer-Encoding: gzip\r\n\r\nabc", 501),
    ("te_identity", POST + "Transfer-Encoding: identity\r\n\r\nabc", 501),
    ("te_chunked_gzip", POST + "Transfer-Encoding: chunked, gzip\r\n\r\n" + ABC, 501),
    ("te_gzip_chunked", POST + "Transfer-Encoding: gzip, chunked\r\n\r\n" + ABC, 501),
    ("te_two_fields_gzip_chunked",
     POST + "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n" + ABC, 501),
    ("te_leading_comma", POST + "Transfer-Encoding: ,chunked\r\n\r\n" + ABC, 400),
    ("te_trailing_comma", POST + "Transfer-Encoding: chunked,\r\n\r\n" + ABC, 400),
    ("te_empty", POST + "Transfer-Encoding: \r\n\r\n" + ABC, 400),
    ("te_quoted", POST + "Transfer-Encoding: \"chunked\"\r\n\r\n" + ABC, 400),
    ("te_chunked_param", POST + "Transfer-Encoding: chunked;q=1\r\n\r\n" + ABC, 400),
    ("te_chunked_twice_list", POST + "Transfer-Encoding: chunked, chunked\r\n\r\n" + ABC, 400),
    ("te_chunked_twice_fields",
     POST + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" + ABC, 400),
    ("te_xchunked", POST + "Transfer-Encoding: xchunked\r\n\r\n" + ABC, 501),
    ("te_on_http10",
     "POST /up HTTP/1.0\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n" + ABC, 400),
    ("te_space_before_colon", POST + "Transfer-Encoding : chunked\r\n\r\n" + ABC, 400),
    ("te_tab_before_colon", POST + "Transfer-Encoding\t: chunked\r\n\r\n" + ABC, 400),
    ("space_before_colon", GET + "X-Foo : a\r\n\r\n", 400),
    ("obs_fold", GET + "X-Foo: a\r\n b\r\n\r\n", 400),
    ("obs_fold_tab", GET + "X-Foo: a\r\n\tb\r\n\r\n", 400),
    ("obs_fold_in_te", POST + "Transfer-Encoding: x\r\n chunked\r\n\r\n" + ABC, 400),
    ("obs_fold_in_host", "GET / HTTP/1.1\r\nHost: a.example\r\n evil.example\r\n\r\n", 400),
    ("fold_after_request_line", "GET / HTTP/1.1\r\n Host: a.example\r\n\r\n", 400),
    ("nul_in_value", GET + "X-Foo: a\x00b\r\n\r\n", 400),
    ("bare_cr_in_value", GET + "X-Foo: a\rb\r\n\r\n", 400),
    ("ctl_in_value", GET + "X-Foo: a\x01b\r\n\r\n", 400),
    ("del_in_value", GET + "X-Foo: a\x7fb\r\n\r\n", 400),
    ("line_without_colon", GET + "X-Foo\r\n\r\n", 400),
    ("empty_field_name", GET + ": a\r\n\r\n", 400),
    ("bare_lf_in_head", "GET / HTTP/1.1\r\nHost: a.example\nX-Foo: b\r\n\r\n", 400),
    ("bare_lf_head", "GET / HTTP/1.1\nHost: a.example\n\n", 400),
    ("missing_host", "GET / HTTP/1.1\r\n\r\n", 400),
    ("duplicate_host", GET + "Host: b.example\r\n\r\n", 400),
    ("duplicate_host_same", GET + "Host: a.example\r\n\r\n", 400),
    ("empty_host", "GET / HTTP/1.1\r\nHost: \r\n\r\n", 400),
    ("host_with_space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    ("host_with_userinfo", "GET / HTTP/1.1\r\nHost: u@a.example\r\n\r\n", 400),
    ("host_with_slash", "GET / HTTP/1.1\r\nHost: a.example/x\r\n\r\n", 400),
    ("absolute_form_other_host", "GET http://b.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n", 400),
    ("connect_method", "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", 400),
    ("connection_names_host", GET + "Connection: Host\r\n\r\n", 400),
    ("http_1_2", "GET / HTTP/1.2\r\nHost: a.example\r\n\r\n", 400),
    ("http2_preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
    ("space_in_target", "GET /a b HTTP/1.1\r\nHost: a.example\r\n\r\n", 400),
    ("ctl_in_target", "GET /a\x01 HTTP/1.1\r\nHost: a.example\r\n\r\n", 400),
    ("leading_crlf", "\r\nGET / HTTP/1.1\r\nHost: a.example\r\n\r\n", 400),
]

# Refused in the body: the head was already streamed upstream, but the upstream never gets a
# complete request, and its connection is closed.
CHUNKED = POST + "Transfer-Encoding: chunked\r\n\r\n"
BODY_SHAPES = [
    ("chunk_size_not_hex", CHUNKED + "Z\r\nabc\r\n0\r\n\r\n", 400),
    ("chunk_size_0x", CHUNKED + "0x3\r\nabc\r\n0\r\n\r\n", 400),
    ("chunk_size_negative", CHUNKED + "-3\r\nabc\r\n0\r\n\r\n", 400),
    ("chunk_size_trailing_junk", CHUNKED + "3zz\r\nabc\r\n0\r\n\r\n", 400),
    ("chunk_size_overflow_17_digits", CHUNKED + "10000000000000003\r\nabc\r\n0\r\n\r\n", 400),
    ("chunk_size_16_f_over_body_limit", CHUNKED + "ffffffffffffffff\r\nabc\r\n0\r\n\r\n", 413),
    ("chunk_bare_lf_after_size", CHUNKED + "3\nabc\r\n0\r\n\r\n", 400),
    ("chunk_bare_lf_after_data", CHUNKED + "3\r\nabc\n0\r\n\r\n", 400),
    ("chunk_data_longer_than_size", CHUNKED + "3\r\nabcd\r\n0\r\n\r\n", 400),
    ("chunk_ext_bare_cr", CHUNKED + "3;a\rb\r\nabc\r\n0\r\n\r\n", 400),
    ("trailer_with_content_length", CHUNKED + "3\r\nabc\r\n0\r\nContent-Length: 5\r\n\r\n", 400),
    ("chunk_ext_200k", CHUNKED + "3;e=" + "x" * 200000 + "\r\nabc\r\n0\r\n\r\n", 400),
    ("trailer_70k", CHUNKED + "3\r\nabc\r\n0\r\nX-T: " + "x" * 70000 + "\r\n\r\n", 400),
]

MEASURED = []  # (name, expected, status, closed, what the upstream saw), printed at the end


class RequestSmugglingTest(HardeningTestCase):

    @classmethod
    def tearDownClass(cls):
        if MEASURED:
            sys.stderr.write("\n%-34s %8s %6s %6s  %s\n" % ("shape", "expected", "status",
                                                         "closed", "upstream"))
            for row in MEASURED:
                sys.stderr.write("%-34s %8s %6s %6s  %s\n" % row)
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.fake = self.fake_upstream()
        self.proxy = self.proxy_for({"blue": self.fake.endpoint},
                                    limits={"max_request_body_bytes": 1048576})
        self.n = 0

    def sentinel(self):
        """A normal request on a new connection; returns the upstream heads that arrived since
        `before`, minus the sentinel's own: what the refused request left upstream."""
        self.n += 1
        target = f"/sentinel-{self.n}"
        r, _ = exchange(self.proxy.port, f"GET {target} HTTP/1.1\r\nHost: a.example\r\n"
                        "Connection: close\r\n\r\n")
        self.assertIsNotNone(r)
        self.assertEqual(r.status, 200, r)
        self.fake.wait_heads(1)
        return target

    def check(self, name, raw, expected, body_level):
        before = self.fake.head_count()
        closed_before = self.fake.closed
        r, closed = exchange(self.proxy.port, raw.encode("latin-1"))
        target = self.sentinel()
        with self.fake.lock:
            heads = [h for h in self.fake.heads[before:] if h.target != target]
        seen = "nothing" if not heads else (
            "head only, incomplete body" if not any(h.complete for h in heads) else
            f"COMPLETE REQUEST {heads[0].raw_head[:80]!r}")
        status = r.status if r else None
        MEASURED.append((name, expected, status, closed, seen))
        self.assertIsNotNone(r, f"{name}: no response before close")
        self.assertEqual(r.status, expected, f"{name}: {r!r}")
        self.assertTrue(closed, f"{name}: connection kept open after {r.status}")
        self.assertIn("close", (r.header("Connection") or "").lower(), f"{name}: {r!r}")
        if body_level:
            self.assertFalse(any(h.complete for h in heads),
                             f"{name}: the upstream got a complete request: {heads!r}")
            # The upstream connection that carried the head was closed, not pooled.
            if heads:
                self.fake.wait_closed(closed_before + 1)
        else:
            self.assertEqual(heads, [], f"{name}: the upstream saw {heads!r}")

    def test_head_shapes_are_refused_before_the_upstream(self):
        for name, raw, expected in HEAD_SHAPES:
            with self.subTest(name):
                self.check(name, raw, expected, body_level=False)
        self.assertAlive(self.proxy)

    def test_body_shapes_are_refused_and_never_complete_upstream(self):
        for name, raw, expected in BODY_SHAPES:
            with self.subTest(name):
                self.check(name, raw, expected, body_level=True)
        self.assertAlive(self.proxy)

    def test_refused_request_does_not_let_the_next_one_through(self):
        # The classic: a body the proxy would frame one way and the upstream another. Whatever
        # comes after a refused head on the same connection is never parsed.
        raw = (POST + "Transfer-Encoding: gzip\r\n\r\n"
               "GET /smuggled HTTP/1.1\r\nHost: a.example\r\n\r\n")
        r, closed = exchange(self.proxy.port, raw.encode())
        self.assertEqual(r.status, 501)
        self.assertTrue(closed)
        self.sentinel()
        self.assertNotIn("/smuggled", [h.target for h in self.fake.heads])


class CanonicalForwardingTest(HardeningTestCase):
    """Accepted requests reach the upstream with framing rebuilt from what was parsed."""

    def setUp(self):
        super().setUp()
        self.fake = self.fake_upstream()
        self.proxy = self.proxy_for({"blue": self.fake.endpoint})

    def forward(self, raw):
        before = self.fake.head_count()
        c = self.raw_client(self.proxy.port)
        c.send(raw.encode("latin-1"))
        r = c.response()
        self.assertEqual(r.status, 200, r)
        with self.fake.lock:
            heads = self.fake.heads[before:]
        self.assertEqual(len(heads), 1, heads)
        self.assertTrue(heads[0].complete)
        return heads[0], c

    def test_content_length_is_normalized(self):
        req, _ = self.forward(POST + "Content-Length:  003 \r\n\r\nabc")
        self.assertEqual(req.header_all("Content-Length"), ["3"])
        self.assertIsNone(req.header("Transfer-Encoding"))
        self.assertEqual(req.body, b"abc")

    def test_chunked_is_rechunked_without_extensions_or_trailers(self):
        req, _ = self.forward(POST + "Transfer-Encoding: CHUNKED\r\n\r\n"
                              "2;ext=\"x\"\r\nab\r\n1\r\nc\r\n0\r\nX-Trailer: t\r\n\r\n")
        self.assertEqual(req.header_all("Transfer-Encoding"), ["chunked"])
        self.assertIsNone(req.header("Content-Length"))
        self.assertEqual(req.body, b"abc")
        self.assertNotIn(b"ext=", req.raw_head)

    def test_hop_by_hop_fields_are_not_forwarded(self):
        req, _ = self.forward(
            GET + "Connection: keep-alive, X-Private\r\nX-Private: secret\r\n"
            "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n"
            "Trailer: X-T\r\nUpgrade: websocket\r\nX-Kept: yes\r\n\r\n")
        for name in ("Connection", "X-Private", "Keep-Alive", "Proxy-Connection", "TE",
                     "Trailer", "Upgrade"):
            self.assertIsNone(req.header(name), f"{name} forwarded: {req.raw_head!r}")
        self.assertEqual(req.header("X-Kept"), "yes")
        self.assertEqual(req.header("Host"), "a.example")
        self.assertEqual(req.header("X-Forwarded-For"), "127.0.0.1")
        self.assertEqual(req.header("X-Forwarded-Proto"), "http")
        self.assertEqual(req.header("X-Forwarded-Host"), "a.example")
        self.assertEqual(req.version, "HTTP/1.1")

    def test_http10_without_host_and_absolute_form_are_accepted(self):
        req, _ = self.forward("GET /ten HTTP/1.0\r\n\r\n")
        self.assertEqual(req.target, "/ten")
        req, _ = self.forward("GET http://a.example/abs HTTP/1.1\r\nHost: a.example\r\n\r\n")
        self.assertEqual(req.header("Host"), "a.example")

    def test_absolute_form_is_forwarded_in_origin_form(self):
        # RFC 9112 §3.2.2: the upstream is an origin server, which expects origin-form; an empty
        # path becomes "/" (§3.2.1) and the query stays.
        for target, expected in (("http://a.example/abs?q=1", "/abs?q=1"),
                                 ("http://a.example", "/"),
                                 ("HTTP://a.example?x=1", "/?x=1")):
            req, _ = self.forward(f"GET {target} HTTP/1.1\r\nHost: a.example\r\n\r\n")
            self.assertEqual(req.target, expected, req)
        # HTTP/1.0 may omit Host: the authority of the target becomes the forwarded Host.
        req, _ = self.forward("GET http://a.example/ten HTTP/1.0\r\n\r\n")
        self.assertEqual((req.target, req.header_all("Host")), ("/ten", ["a.example"]))

    def test_obs_text_in_values_passes_through(self):
        req, _ = self.forward(GET + "X-Name: caf\xc3\xa9\r\n\r\n")
        self.assertEqual(req.header("X-Name").encode("latin-1"), b"caf\xc3\xa9")


# Upstream responses: name -> raw bytes the fake upstream sends for GET /r/<name>.
BAD_RESPONSES = {
    "te_gzip": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc",
    "te_gzip_chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "te_gzip_with_cl": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc",
    "cl_then_te_chunked": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "te_leading_comma": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: ,chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "cl_list_same": b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc",
    "cl_repeated_same": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    "cl_differing": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc",
    "cl_plus": b"HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\nabc",
    "te_on_http10": b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "no_content_with_body": b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nHTTP/",
    "space_before_colon": b"HTTP/1.1 200 OK\r\nContent-Length : 3\r\n\r\nabc",
    "nul_in_value": b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 3\r\n\r\nabc",
    "garbage": b"this is not http\r\n\r\n",
    "bad_status": b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
    "bare_lf_head": b"HTTP/1.1 200 OK\nContent-Length: 3\n\nabc",
    "switching_protocols": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
    "head_too_large": b"HTTP/1.1 200 OK\r\nX-Big: " + b"x" * 70000 + b"\r\nContent-Length: 0\r\n\r\n",
    "empty_close": b"",
}


MEASURED_RESPONSES = []  # (name, status, upstream connection dropped), printed at the end


def scripted(conn, req):
    name = req.target.rsplit("/", 1)[-1]
    if req.target.startswith("/r/"):
        conn.send(BAD_RESPONSES[name])
        if name in ("empty_close", "te_gzip", "te_on_http10"):
            return False
        conn.hang(5)  # keep the connection: the proxy, not us, must give it up
        return False
    conn.reply(200, "ok", {"Content-Type": "text/plain"})
    return True


class ResponseFramingTest(HardeningTestCase):

    @classmethod
    def tearDownClass(cls):
        if MEASURED_RESPONSES:
            sys.stderr.write("\n%-24s %6s %s\n" % ("upstream response", "status",
                                                   "upstream connection dropped"))
            for row in MEASURED_RESPONSES:
                sys.stderr.write("%-24s %6s %s\n" % row)
        super().tearDownClass()

    def test_bad_upstream_framing_is_502_and_the_connection_is_dropped(self):
        fake = self.fake_upstream(scripted)
        proxy = self.proxy_for({"blue": fake.endpoint})
        for name in BAD_RESPONSES:
            with self.subTest(name):
                closed_before = fake.closed
                c = self.raw_client(proxy.port)
                c.send(f"GET /r/{name} HTTP/1.1\r\nHost: a.example\r\n\r\n")
                try:
                    r = c.response()
                except EOFError:
                    r = None
                try:
                    fake.wait_closed(closed_before + 1, timeout=5)
                    dropped = True
                except AssertionError:
                    dropped = False
                MEASURED_RESPONSES.append((name, r.status if r else None, dropped))
                self.assertIsNotNone(r, f"{name}: closed without a response")
                self.assertEqual(r.status, 502, f"{name}: {r!r}")
                # Not reused: the proxy closed its upstream connection.
                self.assertTrue(dropped, f"{name}: upstream connection kept")
                # The client may keep its connection after a 502 the proxy made; if it does, the
                # next request on it must work.
                if not c.closed(0.2):
                    c.send("GET /ok HTTP/1.1\r\nHost: a.example\r\n\r\n")
                    self.assertEqual(c.response().status, 200)
        self.assertAlive(proxy)

    def test_oversized_response_trailer_or_extension_never_crashes(self):
        # Beast 1.81 bounds neither trailers nor chunk extensions; a 70 kB trailer field throws
        # from an unbounded buffer. The head is out by then: the client connection must close.
        def huge(conn, req):
            if req.target == "/trailer":
                conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"
                          b"X-T: " + b"t" * 70000 + b"\r\n\r\n")
            else:
                conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;e=" +
                          b"e" * 200000 + b"\r\nabc\r\n0\r\n\r\n")
            conn.hang(5)
            return False
        fake = self.fake_upstream(huge)
        proxy = self.proxy_for({"blue": fake.endpoint})
        for path in ("/trailer", "/extension"):
            with self.subTest(path):
                c = self.raw_client(proxy.port)
                c.send(f"GET {path} HTTP/1.1\r\nHost: a.example\r\n\r\n")
                try:
                    r = c.response()
                    self.assertNotEqual(r.status, 200, f"relayed whole: {r!r}")
                except EOFError:
                    pass  # head relayed, then closed: the honest end
        self.assertAlive(proxy)
        fake.wait_closed(2, timeout=5)

    def test_obs_fold_in_a_response_is_unfolded_not_forwarded(self):
        def folded(conn, req):
            conn.send(b"HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 2\r\n\r\nok")
            return True
        fake = self.fake_upstream(folded)
        proxy = self.proxy_for({"blue": fake.endpoint})
        c = self.raw_client(proxy.port)
        c.send(GET + "\r\n")
        r = c.response()
        self.assertIn(r.status, (200, 502))
        self.assertNotIn(b"\r\n ", r.raw_head)
        if r.status == 200:
            self.assertEqual(r.header("X-Folded"), "a b")

    def test_truncated_chunked_response_closes_the_client_connection(self):
        def cut(conn, req):
            conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
            conn.reset()
            return False
        fake = self.fake_upstream(cut)
        proxy = self.proxy_for({"blue": fake.endpoint})
        c = self.raw_client(proxy.port)
        c.send(GET + "\r\n")
        with self.assertRaises(EOFError):
            c.response()  # the head went out; the only honest signal left is the close
        self.assertAlive(proxy)

    def test_bad_chunk_size_in_a_response_closes_both_sides(self):
        def bad(conn, req):
            conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n")
            conn.hang(5)
            return False
        fake = self.fake_upstream(bad)
        proxy = self.proxy_for({"blue": fake.endpoint})
        c = self.raw_client(proxy.port)
        c.send(GET + "\r\n")
        try:
            r = c.response()
            self.fail(f"a response with a bad chunk size was relayed whole: {r!r}")
        except EOFError:
            pass
        fake.wait_closed(1, timeout=5)


if __name__ == "__main__":
    unittest.main()
