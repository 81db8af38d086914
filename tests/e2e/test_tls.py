"""TLS termination end to end (docs/edge.md): curl and `openssl s_client` against the TLS
listener with certificates made at test time by the `openssl` CLI (a CA of the test's own), SNI
choosing among certificates, old protocol versions refused, bad files as config errors, a
certificate reload that leaves open connections alone, X-Forwarded-Proto and the handshake
counter."""

import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import unittest

from harness import (DEADLINE, E2ETestCase, Proxy, binary, make_config, poll, route)

TLS_LISTEN_RX = r"proxy listening on 127\.0\.0\.1:(\d+) \(TLS, \d+ workers?\)"


def openssl(*args, cwd):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                       timeout=DEADLINE)
    if r.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)}: {r.stderr}")
    return r.stdout


class CA:
    """A throwaway certificate authority in `workdir` (EC P-256 keys: quick to make)."""

    def __init__(self, workdir):
        self.dir = workdir
        self.cert = os.path.join(workdir, "ca.pem")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                "-subj", "/CN=canary test CA", cwd=workdir)

    def issue(self, name, cn, dns_names):
        """name.pem + name.key for `cn`, with these subjectAltName DNS names (none: CN only)."""
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}",
                cwd=self.dir)
        ext = os.path.join(self.dir, f"{name}.ext")
        with open(ext, "w") as f:
            if dns_names:
                f.write("subjectAltName=" + ",".join(f"DNS:{d}" for d in dns_names) + "\n")
            else:
                f.write("basicConstraints=CA:FALSE\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-out", f"{name}.pem", "-extfile", ext,
                cwd=self.dir)
        return os.path.join(self.dir, f"{name}.pem"), os.path.join(self.dir, f"{name}.key")


class TlsProxy(Proxy):
    """A proxy whose TLS port is parsed too (and which may have no plain listener)."""

    def start(self):
        self.process = self.launch()
        self.history.append(self.process)
        try:
            m = self.process.wait_for_log(TLS_LISTEN_RX, DEADLINE)
            self.tls_port = int(m.group(1))
            if self.config.get("listen") != "":
                m = self.process.wait_for_log(
                    r"proxy listening on 127\.0\.0\.1:(\d+) \(\d+ workers?\)", DEADLINE)
                self.port = int(m.group(1))
            m = self.process.wait_for_log(r"admin listening on 127\.0\.0\.1:(\d+)", DEADLINE)
            self.admin_port = int(m.group(1))
            poll(lambda: self.admin("GET", "/readyz").status == 200, what="GET /readyz -> 200")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.process.output()}") from None
        return self


def metric(text, name, labels):
    for line in text.splitlines():
        if line.startswith(name + "{") and labels in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


class TlsTestBase(E2ETestCase):

    def setUp(self):
        super().setUp()
        self.ca = CA(self.tmp)
        self.site = self.ca.issue("site", "localhost", ["localhost", "site.test"])
        self.blue, self.green = self.blue_green()

    def config(self, certificates, listen="127.0.0.1:0", **tls):
        cfg = make_config({"blue": self.blue.endpoint, "green": self.green.endpoint},
                          [route(steps=[{"setWeight": 0}, {"pause": {}}])])
        cfg["listen"] = listen
        cfg["tls"] = {"listen": "127.0.0.1:0",
                      "certificates": [{"cert": c, "key": k} for c, k in certificates], **tls}
        return cfg

    def start_tls(self, cfg):
        p = TlsProxy(self.tmp, cfg)
        self.addCleanup(self._dump_logs_on_failure, p)
        self.addCleanup(p.stop)
        return p.start()

    def client_context(self):
        ctx = ssl.create_default_context(cafile=self.ca.cert)
        return ctx

    def https(self, proxy, path, host="localhost", ctx=None, headers=None):
        # SNI and the Host header name `host`; the TCP connection goes to 127.0.0.1.
        conn = http.client.HTTPSConnection(host, proxy.tls_port, timeout=DEADLINE)
        conn.sock = ctx_wrap(ctx or self.client_context(), proxy.tls_port, host)
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        body = r.read()
        conn.close()
        return r.status, body

    def s_client(self, port, *args):
        r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                            "-CAfile", self.ca.cert, *args],
                           input="", capture_output=True, text=True, timeout=DEADLINE)
        return r.returncode, r.stdout + r.stderr


def ctx_wrap(ctx, port, host):
    raw = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
    return ctx.wrap_socket(raw, server_hostname=host)


class TlsTest(TlsTestBase):

    def test_curl_https_with_the_test_ca_and_forwarded_proto(self):
        proxy = self.start_tls(self.config([self.site]))
        r = subprocess.run(["curl", "-sS", "--cacert", self.ca.cert, "--resolve",
                            f"localhost:{proxy.tls_port}:127.0.0.1",
                            f"https://localhost:{proxy.tls_port}/echo"],
                           capture_output=True, text=True, timeout=DEADLINE)
        self.assertEqual(r.returncode, 0, r.stderr)
        headers = {k.lower(): v for k, v in json.loads(r.stdout)["headers"]}
        self.assertEqual(headers.get("x-forwarded-proto"), "https", headers)
        # The plain listener of the same proxy still says http.
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=DEADLINE)
        conn.request("GET", "/echo")
        plain = {k.lower(): v for k, v in json.loads(conn.getresponse().read())["headers"]}
        conn.close()
        self.assertEqual(plain.get("x-forwarded-proto"), "http")
        text = proxy.admin("GET", "/metrics").text
        self.assertGreaterEqual(
            metric(text, "canary_proxy_tls_handshakes_total", 'result="ok"'), 1, text)

    def test_sni_picks_the_certificate_by_name_and_the_first_is_the_default(self):
        wild = self.ca.issue("wild", "wildcard", ["*.example.test"])
        cn_only = self.ca.issue("cnonly", "cn.example.org", [])
        proxy = self.start_tls(self.config([self.site, wild, cn_only]))

        def subject(*args):
            rc, out = self.s_client(proxy.tls_port, *args)
            m = re.search(r"subject=.*CN\s*=\s*([^\s,/]+)", out)
            self.assertIsNotNone(m, out)
            return m.group(1)

        self.assertEqual(subject("-servername", "a.example.test"), "wildcard")
        self.assertEqual(subject("-servername", "cn.example.org"), "cn.example.org")
        self.assertEqual(subject("-servername", "site.test"), "localhost")
        # No match (one label too many for the wildcard) and no SNI: the first certificate.
        self.assertEqual(subject("-servername", "a.b.example.test"), "localhost")
        self.assertEqual(subject("-noservername"), "localhost")

    def test_tls_1_0_and_1_1_are_refused_and_1_2_accepted(self):
        proxy = self.start_tls(self.config([self.site]))
        for old in ("-tls1", "-tls1_1"):
            # SECLEVEL=0 so that the client would offer it: the refusal must be the server's.
            rc, out = self.s_client(proxy.tls_port, old, "-cipher", "DEFAULT@SECLEVEL=0",
                                    "-servername", "localhost")
            self.assertNotEqual(rc, 0, out)
        rc, out = self.s_client(proxy.tls_port, "-tls1_2", "-servername", "localhost")
        self.assertEqual(rc, 0, out)
        self.assertIn("Verification: OK", out)
        text = proxy.admin("GET", "/metrics").text
        self.assertGreaterEqual(
            metric(text, "canary_proxy_tls_handshakes_total", 'result="failed"'), 2, text)

    def test_min_version_1_3_refuses_tls_1_2(self):
        proxy = self.start_tls(self.config([self.site], min_version="1.3"))
        rc, out = self.s_client(proxy.tls_port, "-tls1_2", "-servername", "localhost")
        self.assertNotEqual(rc, 0, out)
        rc, out = self.s_client(proxy.tls_port, "-tls1_3", "-servername", "localhost")
        self.assertEqual(rc, 0, out)

    def test_alpn_offers_http11(self):
        # h2 is chosen when offered (http2.enabled, the default: docs/http2.md), http/1.1
        # otherwise, and only http/1.1 with HTTP/2 off.
        for http2, offered, chosen in ((None, ["h2", "http/1.1"], "h2"),
                                       (None, ["http/1.1"], "http/1.1"),
                                       ({"enabled": False}, ["h2", "http/1.1"], "http/1.1")):
            cfg = self.config([self.site])
            if http2 is not None:
                cfg["http2"] = http2
            proxy = self.start_tls(cfg)
            ctx = self.client_context()
            ctx.set_alpn_protocols(offered)
            s = ctx_wrap(ctx, proxy.tls_port, "localhost")
            self.assertEqual(s.selected_alpn_protocol(), chosen, (http2, offered))
            s.close()
            proxy.stop()

    def test_tls_only_when_listen_is_empty(self):
        proxy = self.start_tls(self.config([self.site], listen=""))
        status, body = self.https(proxy, "/color")
        self.assertEqual(status, 200)
        self.assertIsNone(proxy.port)
        self.assertNotRegex(proxy.process.stdout.text() + proxy.process.stderr.text(),
                            r"proxy listening on 127\.0\.0\.1:\d+ \(\d+ workers?\)")

    def test_a_stalled_handshake_is_cut_at_client_header(self):
        cfg = self.config([self.site])
        cfg["timeouts"]["client_header"] = "300ms"
        proxy = self.start_tls(cfg)
        with socket.create_connection(("127.0.0.1", proxy.tls_port), timeout=DEADLINE) as s:
            s.sendall(b"\x16\x03\x01")  # the start of a ClientHello, then nothing
            self.assertEqual(s.recv(1), b"")  # closed by the proxy, well before DEADLINE
        poll(lambda: metric(proxy.admin("GET", "/metrics").text,
                            "canary_proxy_tls_handshakes_total", 'result="timeout"') >= 1,
             what="a handshake timeout counted")

    def test_reload_swaps_the_certificate_and_open_connections_live_on(self):
        cert_path, key_path = self.path("live.pem"), self.path("live.key")
        first = self.ca.issue("first", "first", ["localhost"])
        second = self.ca.issue("second", "second", ["localhost"])
        for src, dst in zip(first, (cert_path, key_path)):
            os.replace(src, dst)
        proxy = self.start_tls(self.config([(cert_path, key_path)]))

        ctx = self.client_context()
        conn = http.client.HTTPSConnection("localhost", proxy.tls_port, timeout=DEADLINE)
        conn.sock = ctx_wrap(ctx, proxy.tls_port, "localhost")
        conn.request("GET", "/color")
        self.assertEqual(json.loads(conn.getresponse().read()), "blue")
        old_cn = dict(x[0] for x in conn.sock.getpeercert()["subject"])["commonName"]
        self.assertEqual(old_cn, "first")

        for src, dst in zip(second, (cert_path, key_path)):
            os.replace(src, dst)
        r = proxy.admin("POST", "/api/v1/config/reload")
        self.assertEqual(r.status, 200, r.text)

        # The open connection keeps working on its session...
        conn.request("GET", "/color")
        self.assertEqual(json.loads(conn.getresponse().read()), "blue")
        conn.close()
        # ... and a new handshake gets the new certificate.
        s = ctx_wrap(self.client_context(), proxy.tls_port, "localhost")
        self.assertEqual(dict(x[0] for x in s.getpeercert()["subject"])["commonName"], "second")
        s.close()


class ChunkedUpstream:
    """An HTTP/1.1 upstream answering every request with a chunked body of CHUNKS chunks."""
    CHUNKS = [os.urandom(n) for n in (1, 100, 5000, 70000, 3)]

    def __init__(self):
        import http.server
        import threading
        chunks = self.CHUNKS

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for c in chunks:
                    self.wfile.write(b"%x\r\n" % len(c) + c + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class TlsChunkedTest(TlsTestBase):

    def test_a_chunked_response_arrives_intact_over_tls(self):
        up = ChunkedUpstream()
        self.addCleanup(up.stop)
        cfg = self.config([self.site])
        cfg["upstreams"]["blue"]["endpoints"] = [up.endpoint]
        proxy = self.start_tls(cfg)
        for _ in range(3):
            status, body = self.https(proxy, "/stream")
            self.assertEqual(status, 200)
            self.assertEqual(body, b"".join(ChunkedUpstream.CHUNKS))


class TlsConfigTest(TlsTestBase):

    def check(self, cfg):
        p = Proxy(self.tmp, cfg)
        r = subprocess.run([binary("canary-proxy"), "--config", p.config_path, "--check"],
                           capture_output=True, text=True, timeout=DEADLINE)
        return r.returncode, r.stdout + r.stderr

    def test_a_bad_key_is_a_config_error_naming_the_file(self):
        bad = self.write("bad.key", "-----BEGIN PRIVATE KEY-----\nnot a key\n"
                                    "-----END PRIVATE KEY-----\n")
        rc, out = self.check(self.config([(self.site[0], bad)]))
        self.assertNotEqual(rc, 0, out)
        self.assertIn(bad, out)
        self.assertRegex(out, r"(?i)private key.*(decode|PEM|ASN1|bad|error)")

    def test_a_missing_certificate_is_a_config_error_naming_the_file(self):
        missing = self.path("nope.pem")
        rc, out = self.check(self.config([(missing, self.site[1])]))
        self.assertNotEqual(rc, 0, out)
        self.assertIn(missing, out)

    def test_a_key_of_another_certificate_is_refused(self):
        other = self.ca.issue("other", "other", ["other.test"])
        rc, out = self.check(self.config([(self.site[0], other[1])]))
        self.assertNotEqual(rc, 0, out)
        self.assertRegex(out, r"does not match|mismatch")

    def test_tls_listen_equal_to_listen_is_a_config_error(self):
        cfg = self.config([self.site], listen="127.0.0.1:18443")
        cfg["tls"]["listen"] = "127.0.0.1:18443"
        rc, out = self.check(cfg)
        self.assertNotEqual(rc, 0, out)
        self.assertIn("same address as listen", out)

    def test_the_valid_config_passes_check(self):
        rc, out = self.check(self.config([self.site]))
        self.assertEqual(rc, 0, out)


if __name__ == "__main__":
    unittest.main()
