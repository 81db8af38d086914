"""The data plane end to end: traffic split, overrides, stickiness, routes, headers, failover
(ingress-nginx canary behaviours; see docs/routing.md and
docs/architecture.md#data-plane-rules)."""

import collections
import json
import re
import unittest

from harness import (DataClient, E2ETestCase, closed_port, make_config, raw_exchange, route)

HOLD = [{"setWeight": 0}, {"pause": {}}]  # a rollout that sends no weight-decided traffic


def hold_at(weight):
    return [{"setWeight": weight}, {"pause": {}}]


class SplitTest(E2ETestCase):

    def setUp(self):
        super().setUp()
        self.proxy = self.demo_proxy()
        self.proxy.op("canary-demo", "upstream", {"upstream": "green"})
        s = self.proxy.status()
        self.assertEqual((s["phase"], s["step"], s["weight"], s["actual_weight"]),
                         ("Paused", 1, 20, 20), s)

    def test_weight_20_gives_exactly_20_of_100(self):
        self.assertEqual(self.proxy.colors(100), {"blue": 80, "green": 20})
        # Every window of weight_total requests holds exactly `weight` canary requests.
        self.assertEqual(self.proxy.colors(100), {"blue": 80, "green": 20})

    def test_header_decisions_do_not_advance_the_round_robin(self):
        c = self.proxy.colors(50)
        forced = self.proxy.colors(7, headers={"X-Canary": "always"})
        self.assertEqual(forced, {"green": 7})
        c.update(self.proxy.colors(50))
        self.assertEqual(c, {"blue": 80, "green": 20})

    def test_header_always_never_and_other_values(self):
        self.assertEqual(self.proxy.colors(20, {"X-Canary": "always"}), {"green": 20})
        self.assertEqual(self.proxy.colors(20, {"X-Canary": "never"}), {"blue": 20})
        # Header names are case-insensitive; values are not.
        self.assertEqual(self.proxy.colors(5, {"x-canary": "always"}), {"green": 5})
        # Any other value falls through to the weight.
        self.assertEqual(self.proxy.colors(100, {"X-Canary": "Always"}),
                         {"blue": 80, "green": 20})
        self.assertEqual(self.proxy.colors(100, {"X-Canary": "yes"}), {"blue": 80, "green": 20})

    def test_set_weight_changes_the_split(self):
        s = self.proxy.op("canary-demo", "weight", {"weight": 50}).json()
        self.assertEqual((s["weight"], s["actual_weight"]), (50, 50))
        self.assertEqual(self.proxy.colors(100), {"blue": 50, "green": 50})
        self.proxy.op("canary-demo", "weight", {"weight": 100})
        self.assertEqual(self.proxy.colors(30), {"green": 30})
        self.proxy.op("canary-demo", "weight", {"weight": 0})
        self.assertEqual(self.proxy.colors(30), {"blue": 30})
        # The overrides still work at weight 0 (the canary is active).
        self.assertEqual(self.proxy.colors(5, {"X-Canary": "always"}), {"green": 5})


class NoCanaryTest(E2ETestCase):

    def test_without_a_rollout_everything_goes_to_stable(self):
        proxy = self.demo_proxy()
        self.assertEqual(proxy.status()["canary"], None)
        self.assertEqual(proxy.colors(20), {"blue": 20})
        self.assertEqual(proxy.colors(10, {"X-Canary": "always"}), {"blue": 10})

    def test_fine_weights_with_weight_total_1000(self):
        proxy = self.demo_proxy(steps=hold_at(10), canary={"weight_total": 1000})
        proxy.op("canary-demo", "upstream", {"upstream": "green"})
        s = proxy.status()
        self.assertEqual((s["weight"], s["weight_total"]), (10, 1000))
        self.assertEqual(proxy.colors(1000), {"blue": 990, "green": 10})


class OverrideRulesTest(E2ETestCase):
    """One proxy, one route per host, each with other canary rules; all held at weight 0."""

    @classmethod
    def rules(cls):
        return {
            "value": {"by_header": "X-Canary", "by_header_value": "DoCanary",
                      "by_cookie": "CanaryByCookie"},
            "pattern": {"by_header_pattern": "^Do[A-Z][a-z]+y$"},
            "both": {"by_header_value": "DoCanary", "by_header_pattern": "^Do[A-Z][a-z]+y$"},
            "unanchored": {"by_header_pattern": "can[a-z]ry"},
            "cookie": {"by_header": "", "by_cookie": "Canary-By-Cookie"},
            "myheader": {"by_header": "X-Beta-User"},
        }

    def setUp(self):
        super().setUp()
        blue, green = self.blue_green()
        routes = [route(name=name, hosts=[f"{name}.test"], canary=rule, steps=HOLD)
                  for name, rule in self.rules().items()]
        self.proxy = self.start_proxy(
            make_config({"blue": blue.endpoint, "green": green.endpoint}, routes))
        for name in self.rules():
            s = self.proxy.op(name, "upstream", {"upstream": "green"}).json()
            self.assertEqual((s["phase"], s["canary"], s["weight"]), ("Paused", "green", 0), s)

    def color(self, host, headers=None):
        h = {"Host": f"{host}.test"}
        h.update(headers or {})
        c = self.proxy.colors(3, h)
        self.assertEqual(len(c), 1, f"{host} {headers}: mixed answers {c}")
        return next(iter(c))

    def test_header_value(self):
        self.assertEqual(self.color("value", {"X-Canary": "DoCanary"}), "green")
        self.assertEqual(self.color("value", {"X-Canary": "always"}), "blue")
        self.assertEqual(self.color("value", {"X-Canary": "never"}), "blue")
        self.assertEqual(self.color("value", {"X-Canary": "otherheadervalue"}), "blue")
        self.assertEqual(self.color("value", {"X-Canary": "docanary"}), "blue")
        self.assertEqual(self.color("value"), "blue")

    def test_header_value_falls_through_to_cookie(self):
        self.assertEqual(self.color("value", {"X-Canary": "otherheadervalue",
                                              "Cookie": "CanaryByCookie=always"}), "green")
        self.assertEqual(self.color("value", {"X-Canary": "DoCanary",
                                              "Cookie": "CanaryByCookie=never"}), "green")

    def test_header_pattern(self):
        self.assertEqual(self.color("pattern", {"X-Canary": "DoCanary"}), "green")
        self.assertEqual(self.color("pattern", {"X-Canary": "Docanary"}), "blue")
        self.assertEqual(self.color("pattern", {"X-Canary": "always"}), "blue")
        # Unanchored search (like ingress-nginx): a match anywhere in the value.
        self.assertEqual(self.color("unanchored", {"X-Canary": "my-canary-user"}), "green")
        self.assertEqual(self.color("unanchored", {"X-Canary": "my-cannery-user"}), "blue")

    def test_value_takes_precedence_over_pattern(self):
        self.assertEqual(self.color("both", {"X-Canary": "DoCananry"}), "blue")
        self.assertEqual(self.color("both", {"X-Canary": "DoCanary"}), "green")

    def test_cookie(self):
        self.assertEqual(self.color("cookie", {"Cookie": "Canary-By-Cookie=always"}), "green")
        self.assertEqual(self.color("cookie", {"Cookie": "Canary-By-Cookie=never"}), "blue")
        self.assertEqual(self.color("cookie", {"Cookie": "Canary-By-Cookie=badcookievalue"}),
                         "blue")
        self.assertEqual(self.color("cookie", {"Cookie": "a=1; Canary-By-Cookie=always; b=2"}),
                         "green")
        self.assertEqual(self.color("cookie", {"Cookie": "Other=always"}), "blue")
        # by_header "" turns the header override off.
        self.assertEqual(self.color("cookie", {"X-Canary": "always"}), "blue")

    def test_custom_header_name(self):
        self.assertEqual(self.color("myheader", {"X-Beta-User": "always"}), "green")
        self.assertEqual(self.color("myheader", {"X-Canary": "always"}), "blue")


class StickyTest(E2ETestCase):

    def start(self, sticky, weight, **canary):
        canary = dict(canary, sticky=sticky)
        proxy = self.demo_proxy(steps=hold_at(weight), canary=canary)
        proxy.op("canary-demo", "upstream", {"upstream": "green"})
        self.assertEqual(proxy.status()["weight"], weight)
        return proxy

    def test_cookie_is_issued_and_sticks(self):
        proxy = self.start("cookie:cid", 50, sticky_cookie_max_age="1h")
        seen = collections.Counter()
        for _ in range(30):
            client = DataClient(proxy.port)
            try:
                first = client.request("GET", "/color")
                self.assertEqual(first.status, 200)
                cookies = first.header_all("Set-Cookie")
                self.assertEqual(len(cookies), 1, first.headers)
                m = re.fullmatch(
                    r"cid=([0-9A-Za-z_-]{8,}); Path=/; Max-Age=3600; HttpOnly; SameSite=Lax",
                    cookies[0])
                self.assertIsNotNone(m, cookies[0])
                color = json.loads(first.body)
                seen[color] += 1
                for _ in range(5):
                    r = client.request("GET", "/color", {"Cookie": f"cid={m.group(1)}"})
                    self.assertEqual(json.loads(r.body), color, "a sticky user changed variant")
                    self.assertEqual(r.header_all("Set-Cookie"), [],
                                     "a cookie was issued again")
            finally:
                client.close()
        # 30 users at weight 50: both variants get some (probability of failure ~2e-9).
        self.assertEqual(set(seen), {"blue", "green"}, seen)

    def test_overrides_beat_stickiness(self):
        proxy = self.start("cookie:cid", 0)
        r = proxy.get("/color", {"X-Canary": "always", "Cookie": "cid=abc"})
        self.assertEqual(json.loads(r.body), "green")
        self.assertEqual(r.header_all("Set-Cookie"), [])

    def test_header_sticky_users_only_move_towards_canary(self):
        proxy = self.start("header:X-User", 20)
        users = [f"user-{i}" for i in range(60)]

        def canary_users():
            on = set()
            client = DataClient(proxy.port)
            try:
                for u in users:
                    first = client.color(headers={"X-User": u})
                    for _ in range(2):
                        self.assertEqual(client.color(headers={"X-User": u}), first, u)
                    if first == "green":
                        on.add(u)
            finally:
                client.close()
            return on

        at20 = canary_users()
        proxy.op("canary-demo", "weight", {"weight": 60})
        at60 = canary_users()
        proxy.op("canary-demo", "weight", {"weight": 100})
        at100 = canary_users()
        proxy.op("canary-demo", "weight", {"weight": 0})
        at0 = canary_users()
        self.assertTrue(at20 <= at60, f"users left the canary when the weight rose: "
                                      f"{sorted(at20 - at60)}")
        self.assertLess(len(at20), len(at60))
        self.assertEqual(at100, set(users))
        self.assertEqual(at0, set())
        # Without the header: round-robin on the weight.
        proxy.op("canary-demo", "weight", {"weight": 20})
        self.assertEqual(proxy.colors(100), {"blue": 80, "green": 20})

    def test_client_ip_sticks(self):
        proxy = self.start("client_ip", 50)
        c = proxy.colors(40)
        self.assertEqual(len(c), 1, f"one client IP got both variants: {c}")


class RoutesTest(E2ETestCase):

    def setUp(self):
        super().setUp()
        blue, green = self.blue_green()
        routes = [
            route(name="hosted", hosts=["green.test"], upstream="green"),
            route(name="short", path_prefix="/co", upstream="green"),
            route(name="color", path_prefix="/color", upstream="blue"),
            route(name="echo", path_prefix="/echo", upstream="green"),
        ]
        self.proxy = self.start_proxy(
            make_config({"blue": blue.endpoint, "green": green.endpoint}, routes))

    def test_host_and_longest_prefix(self):
        p = self.proxy
        self.assertEqual(p.colors(3, {"Host": "green.test"}), {"green": 3})
        self.assertEqual(p.colors(3, {"Host": "GREEN.Test:8080"}), {"green": 3})
        self.assertEqual(p.colors(3, {"Host": "other.test"}), {"blue": 3})
        self.assertEqual(p.colors(3, {"Host": "other.test"}, path="/color?x=/echo"), {"blue": 3})
        r = p.get("/echo", {"Host": "other.test"})
        self.assertEqual((r.status, r.json()["color"]), (200, "green"))
        # /color matches "/co" and "/color": the longest wins (blue, above); "/cola" only "/co".
        r = p.get("/cola", {"Host": "other.test"})
        self.assertEqual(r.status, 404)
        self.assertIn("not found", r.text)  # the backend's 404, not the proxy's

    def test_no_route_is_404(self):
        r = self.proxy.get("/healthz", {"Host": "other.test"})
        self.assertEqual(r.status, 404)
        self.assertNotIn("ok", r.text)
        # The same path on the hosted route reaches the backend.
        r = self.proxy.get("/healthz", {"Host": "green.test"})
        self.assertEqual((r.status, r.text.strip()), (200, "ok"))

    def test_forwarded_headers_and_hop_by_hop_removal(self):
        req = (b"GET /echo?x=1 HTTP/1.1\r\n"
               b"Host: app.example:8080\r\n"
               b"Connection: close, X-Secret\r\n"
               b"X-Secret: 1\r\n"
               b"Keep-Alive: x\r\n"
               b"TE: trailers\r\n"
               b"Proxy-Connection: keep-alive\r\n"
               b"X-Forwarded-For: 10.1.2.3\r\n"
               b"X-Custom: kept\r\n"
               b"\r\n")
        r = raw_exchange(self.proxy.port, req)
        self.assertEqual(r.status, 200, r)
        echo = json.loads(r.body)
        self.assertEqual((echo["color"], echo["method"], echo["target"]),
                         ("green", "GET", "/echo?x=1"))
        headers = collections.defaultdict(list)
        for name, value in echo["headers"]:
            headers[name.lower()].append(value)
        self.assertEqual(headers["host"], ["app.example:8080"])
        self.assertEqual(headers["x-forwarded-for"], ["10.1.2.3, 127.0.0.1"])
        self.assertEqual(headers["x-forwarded-proto"], ["http"])
        self.assertEqual(headers["x-forwarded-host"], ["app.example:8080"])
        self.assertEqual(headers["x-custom"], ["kept"])
        for hop in ("x-secret", "keep-alive", "te", "proxy-connection"):
            self.assertNotIn(hop, headers, f"hop-by-hop header {hop} was forwarded: {echo}")
        for value in headers.get("connection", []):
            self.assertNotIn("x-secret", value.lower())
            self.assertNotIn("close", value.lower())
        self.assertEqual((r.header("Connection") or "").lower(), "close")

    def test_forwarded_headers_without_previous_hop(self):
        r = self.proxy.get("/echo", {"Host": "plain.test"})
        headers = dict((k.lower(), v) for k, v in r.json()["headers"])
        self.assertEqual(headers["x-forwarded-for"], "127.0.0.1")
        self.assertEqual(headers["host"], "plain.test")

    def test_keep_alive(self):
        client = DataClient(self.proxy.port)
        try:
            client.request("GET", "/color")
            sock = client.conn.sock
            for i in range(200):
                r = client.request("GET", "/color" if i % 2 else "/echo")
                self.assertEqual(r.status, 200)
                self.assertNotEqual((r.header("Connection") or "").lower(), "close")
                self.assertIs(client.conn.sock, sock, f"the connection was reopened at {i}")
        finally:
            client.close()

    def test_post_body_is_forwarded(self):
        body = b"x" * 200_000
        client = DataClient(self.proxy.port)
        self.addCleanup(client.close)
        r = client.request("POST", "/echo", {"Content-Type": "application/octet-stream"}, body)
        self.assertEqual(r.status, 200)
        echo = r.json()
        self.assertEqual((echo["method"], echo["body_bytes"]), ("POST", 200_000))

    def test_chunked_request_body_is_forwarded(self):
        chunks = [b"hello", b" world", b"z" * 70_000]
        body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
        req = (b"POST /echo HTTP/1.1\r\nHost: chunk.test\r\nTransfer-Encoding: chunked\r\n"
               b"Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n" + body)
        r = raw_exchange(self.proxy.port, req)
        self.assertEqual(r.status, 200, r)
        echo = json.loads(r.body)
        self.assertEqual((echo["method"], echo["body_bytes"]),
                         ("POST", sum(len(c) for c in chunks)))


class FailoverTest(E2ETestCase):

    def test_dead_canary_fails_over_to_stable(self):
        blue = self.start_backend("blue")
        dead = f"127.0.0.1:{closed_port()}"
        proxy = self.start_proxy(make_config({"blue": blue.endpoint, "green": dead},
                                             [route(steps=hold_at(50))]))
        proxy.op("canary-demo", "upstream", {"upstream": "green"})
        self.assertEqual(proxy.status()["weight"], 50)
        self.assertEqual(proxy.colors(40), {"blue": 40})
        self.assertEqual(proxy.colors(10, {"X-Canary": "always"}), {"blue": 10})

    def test_dead_stable_without_canary_is_503(self):
        proxy = self.start_proxy(make_config(
            {"blue": f"127.0.0.1:{closed_port()}", "green": f"127.0.0.1:{closed_port()}"},
            [route(steps=hold_at(50))]))
        codes = [proxy.get("/color").status for _ in range(3)]
        self.assertEqual(codes, [503, 503, 503])

    def test_both_sides_dead_is_503(self):
        proxy = self.start_proxy(make_config(
            {"blue": f"127.0.0.1:{closed_port()}", "green": f"127.0.0.1:{closed_port()}"},
            [route(steps=hold_at(50))]))
        proxy.op("canary-demo", "upstream", {"upstream": "green"})
        for h in ({}, {"X-Canary": "always"}, {"X-Canary": "never"}, {}):
            r = proxy.get("/color", h)
            self.assertEqual(r.status, 503, f"{h}: {r!r}")

    def test_never_fails_over_into_an_aborted_canary(self):
        green = self.start_backend("green")
        proxy = self.start_proxy(make_config(
            {"blue": f"127.0.0.1:{closed_port()}", "green": green.endpoint},
            [route(steps=hold_at(20))]))
        proxy.op("canary-demo", "upstream", {"upstream": "green"})
        self.assertEqual(proxy.colors(10), {"green": 10})  # stable dead: failover to canary
        proxy.op("canary-demo", "abort")
        for h in ({}, {"X-Canary": "always"}):
            r = proxy.get("/color", h)
            self.assertNotEqual(r.status, 200, f"aborted canary served {h}: {r!r}")
            self.assertEqual(r.status, 503, f"{h}: {r!r}")


if __name__ == "__main__":
    unittest.main()
