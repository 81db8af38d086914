"""HTTP/2 from clients (docs/http2.md) with real clients: curl over TLS (ALPN h2) and with prior
knowledge (h2c), h2load for many streams on one connection split exactly by the weight, nghttp
for X-Canary on some streams of one connection, POST bodies both ways, and the HTTP/1.1 answer
to a preface when h2c is off. Certificates are made at test time (test_tls.CA)."""

import json
import os
import re
import shutil
import socket
import subprocess
import unittest

from harness import DEADLINE, E2ETestCase, closed_port, make_config, poll, route
from test_tls import CA, TlsProxy, metric

HAVE_TOOLS = all(shutil.which(t) for t in ("curl", "h2load", "nghttp", "openssl"))


@unittest.skipUnless(HAVE_TOOLS, "curl, h2load, nghttp (nghttp2-client) and openssl needed")
class Http2Test(E2ETestCase):

    def setUp(self):
        super().setUp()
        self.ca = CA(self.tmp)
        self.cert, self.key = self.ca.issue("site", "localhost", ["localhost"])
        self.blue, self.green = self.blue_green()

    def start(self, http2=None, steps=None, canary=None, blue=None, extra=None):
        cfg = make_config({"blue": blue or self.blue.endpoint, "green": self.green.endpoint},
                          [route(steps=steps or [{"setWeight": 20}, {"pause": {}}],
                                 canary=canary)])
        cfg["tls"] = {"listen": "127.0.0.1:0",
                      "certificates": [{"cert": self.cert, "key": self.key}]}
        if http2 is not None:
            cfg["http2"] = http2
        cfg.update(extra or {})
        p = TlsProxy(self.tmp, cfg)
        self.addCleanup(self._dump_logs_on_failure, p)
        self.addCleanup(p.stop)
        return p.start()

    def curl(self, *args):
        r = subprocess.run(["curl", "-sS", "--max-time", str(DEADLINE), *args],
                           capture_output=True, text=True, timeout=DEADLINE + 5)
        return r

    def tls_url(self, proxy, path):
        return ["--cacert", self.ca.cert, "--resolve", f"localhost:{proxy.tls_port}:127.0.0.1",
                f"https://localhost:{proxy.tls_port}{path}"]

    def counts(self, proxy):
        text = proxy.admin("GET", "/metrics").text
        return {c: metric(text, "canary_proxy_requests_total",
                          f'upstream="{c}",code="200"') for c in ("blue", "green")}

    def test_curl_over_tls_negotiates_h2(self):
        p = self.start()
        r = self.curl("--http2", "-w", "\n%{http_version}", *self.tls_url(p, "/color"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines(), ['"blue"', "2"])
        text = p.admin("GET", "/metrics").text
        self.assertEqual(metric(text, "canary_proxy_http2_streams_total", 'route="canary-demo"'),
                         1.0)

    def test_h2_off_keeps_http11_over_tls(self):
        p = self.start(http2={"enabled": False})
        r = self.curl("--http2", "-w", "\n%{http_version}", *self.tls_url(p, "/color"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines(), ['"blue"', "1.1"])

    def test_prior_knowledge_with_h2c(self):
        p = self.start(http2={"h2c": True})
        r = self.curl("--http2-prior-knowledge", "-w", "\n%{http_version}",
                      f"http://127.0.0.1:{p.port}/color")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines(), ['"blue"', "2"])
        # HTTP/1.1 on the same listener is unchanged.
        r = self.curl("-w", "\n%{http_version}", f"http://127.0.0.1:{p.port}/color")
        self.assertEqual(r.stdout.splitlines(), ['"blue"', "1.1"])

    def test_preface_without_h2c_is_400(self):
        p = self.start()
        # h2 is served over TLS (the default), not as prior knowledge on the plain listener.
        r = self.curl("--http2", "-w", "\n%{http_version}", *self.tls_url(p, "/color"))
        self.assertEqual(r.stdout.splitlines(), ['"blue"', "2"])
        with socket.create_connection(("127.0.0.1", p.port), timeout=DEADLINE) as s:
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        self.assertTrue(data.startswith(b"HTTP/1.1 400 "), data)

    def test_streams_of_one_connection_split_exactly_by_weight(self):
        # Weight 20, smooth WRR per worker (one worker): 1000 streams on ONE connection, ten at
        # a time, are 800 stable and 200 canary exactly.
        p = self.start(http2={"h2c": True})
        p.op("canary-demo", "upstream", {"upstream": "green"})
        before = self.counts(p)
        r = subprocess.run(["h2load", "-n", "1000", "-c", "1", "-m", "10",
                            f"http://127.0.0.1:{p.port}/color"],
                           capture_output=True, text=True, timeout=120)
        self.assertIn("1000 succeeded", r.stdout, r.stdout + r.stderr)
        after = self.counts(p)
        self.assertEqual({c: after[c] - before[c] for c in after}, {"blue": 800, "green": 200})

    def test_x_canary_forces_some_streams_of_one_connection(self):
        p = self.start(http2={"h2c": True}, steps=[{"setWeight": 0}, {"pause": {}}])
        p.op("canary-demo", "upstream", {"upstream": "green"})
        # One connection (nghttp sends all URIs on it), three streams: forced, not, forced.
        url = f"http://127.0.0.1:{p.port}/echo"
        out = {}
        for name, hdr in (("forced", ["-H", "X-Canary: always"]), ("plain", [])):
            r = subprocess.run(["nghttp", "-m", "3", *hdr, url],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            out[name] = [json.loads(x)["color"] for x in re.findall(r"\{.*?\"body_bytes\":\d+\}",
                                                                  r.stdout)]
        self.assertEqual(out["forced"], ["green"] * 3)
        self.assertEqual(out["plain"], ["blue"] * 3)

    def test_cookies_joined_and_forwarded_heads(self):
        p = self.start(canary={"by_cookie": "canary"}, steps=[{"setWeight": 0}, {"pause": {}}])
        p.op("canary-demo", "upstream", {"upstream": "green"})
        # Two cookie fields: the router sees "a=1; canary=always" (RFC 9113 §8.2.3).
        r = self.curl("--http2", "-H", "Cookie: a=1", "-H", "Cookie: canary=always",
                      *self.tls_url(p, "/echo"))
        self.assertEqual(r.returncode, 0, r.stderr)
        echo = json.loads(r.stdout)
        self.assertEqual(echo["color"], "green")
        heads = {k.lower(): v for k, v in echo["headers"]}
        self.assertEqual(heads["cookie"], "a=1; canary=always")
        self.assertEqual(heads["host"], f"localhost:{p.tls_port}")
        self.assertEqual(heads["x-forwarded-proto"], "https")
        self.assertEqual(heads["x-forwarded-for"], "127.0.0.1")
        self.assertEqual(echo["version"], "1.1")

    def test_post_bodies_both_ways(self):
        p = self.start()
        body = os.urandom(3 * 1024 * 1024 + 17)  # many windows' worth (initial_window 64 KiB)
        path = self.path("body.bin")
        with open(path, "wb") as f:
            f.write(body)
        # Known length, then chunked upstream (no content-length from the client).
        r = self.curl("--http2", "--data-binary", f"@{path}", *self.tls_url(p, "/echo"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["body_bytes"], len(body))
        r = self.curl("--http2", "-H", "Transfer-Encoding:", "-H", "Content-Length:",
                      "-T", path, "-X", "POST", *self.tls_url(p, "/echo"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["body_bytes"], len(body))
        # A response body larger than the client's window, compared with HTTP/1.1's.
        h1 = self.curl("--http1.1", *self.tls_url(p, "/"))
        h2 = self.curl("--http2", *self.tls_url(p, "/"))
        self.assertEqual(h2.returncode, 0, h2.stderr)
        self.assertGreater(len(h1.stdout), 1000)
        self.assertEqual(h2.stdout, h1.stdout)

    def test_body_over_limit_is_413(self):
        p = self.start()
        cfg = dict(p.config)
        cfg["limits"] = {"max_request_body_bytes": 1000}
        p.write_config(cfg)
        p.sighup()
        poll(lambda: self.curl("--http2", "-o", "/dev/null", "-w", "%{http_code} %{http_version}",
                               "-d", "x" * 2000, *self.tls_url(p, "/echo")).stdout == "413 2",
             what="413 over HTTP/2 after the reload")


    def test_access_log_line_per_stream(self):
        log_path = self.path("access.log")
        p = self.start(http2={"h2c": True},
                       extra={"access_log": {"enabled": True, "path": log_path}})
        r = subprocess.run(["nghttp", "-m", "3", f"http://127.0.0.1:{p.port}/color"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)

        def lines():
            if not os.path.exists(log_path):
                return None
            with open(log_path) as f:
                got = [json.loads(x) for x in f if x.strip()]
            return got if len(got) >= 3 else None
        got = poll(lines, what="three access-log lines")
        self.assertEqual([(x["protocol"], x["status"], x["route"]) for x in got],
                         [("HTTP/2.0", 200, "canary-demo")] * 3)

    def test_no_endpoint_up_is_503_on_the_stream(self):
        p = self.start(blue=f"127.0.0.1:{closed_port()}")
        r = self.curl("--http2", "-w", "\n%{http_code} %{http_version}", *self.tls_url(p, "/color"))
        self.assertEqual(r.stdout.splitlines()[-1], "503 2")
        text = p.admin("GET", "/metrics").text
        self.assertEqual(metric(text, "canary_proxy_requests_total",
                                'upstream="blue",code="503"'), 1.0)


if __name__ == "__main__":
    unittest.main()
