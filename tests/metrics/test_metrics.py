"""/metrics and /api/v1/stats on the admin listener, against the real binaries (see
docs/control-api.md and docs/architecture.md#metrics): `promtool check metrics` on live scrapes,
exact counter movements after known traffic, the histogram's buckets against its count, the rollout
gauges following the steps, and the windowed per-variant statistics."""

import os
import shutil
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

import harness  # noqa: E402
from promtext import Scrape  # noqa: E402

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
ROUTE = "canary-demo"
STEPS = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]

HISTOGRAM_FAMILIES = {"canary_proxy_request_duration_seconds"}
FAMILIES = {
    "canary_proxy_requests_total": "counter",
    "canary_proxy_request_duration_seconds": "histogram",
    "canary_proxy_routing_decisions_total": "counter",
    "canary_proxy_local_replies_total": "counter",
    "canary_proxy_upstream_errors_total": "counter",
    "canary_proxy_connections_active": "gauge",
    "canary_proxy_connections_total": "counter",
    "canary_proxy_rollout_weight": "gauge",
    "canary_proxy_rollout_step": "gauge",
    "canary_proxy_rollout_info": "gauge",
    "canary_proxy_config_reloads_total": "counter",
    "canary_proxy_build_info": "gauge",
}
LABELS = {
    "canary_proxy_requests_total": {"route", "variant", "upstream", "code"},
    "canary_proxy_request_duration_seconds_bucket": {"route", "variant", "le"},
    "canary_proxy_request_duration_seconds_count": {"route", "variant"},
    "canary_proxy_request_duration_seconds_sum": {"route", "variant"},
    "canary_proxy_routing_decisions_total": {"route", "variant", "reason"},
    "canary_proxy_local_replies_total": {"code"},
    "canary_proxy_upstream_errors_total": {"upstream", "reason"},
    "canary_proxy_upstream_ejections_total": {"upstream"},
    "canary_proxy_connections_active": set(),
    "canary_proxy_connections_total": set(),
    "canary_proxy_rollout_weight": {"route"},
    "canary_proxy_rollout_step": {"route"},
    "canary_proxy_rollout_info": {"route", "phase", "stable", "canary"},
    "canary_proxy_config_reloads_total": {"result"},
    "canary_proxy_build_info": {"version"},
}


def scrape(proxy):
    r = proxy.admin("GET", "/metrics")
    if r.status != 200:
        raise AssertionError(f"GET /metrics -> {r.status} {r.text}")
    ct = r.header("Content-Type") or ""
    if not ct.startswith("text/plain") or "version=0.0.4" not in ct:
        raise AssertionError(f"/metrics Content-Type {ct!r}")
    return Scrape(r.text)


def promtool(text):
    return subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=30)


class MetricsTestBase(harness.E2ETestCase):
    def proxy_with_rollout(self, start=True, extra_upstreams=None, extra_routes=None, **kw):
        blue, green = self.blue_green()
        ups = {"blue": blue.endpoint, "green": green.endpoint}
        ups.update(extra_upstreams or {})
        routes = [harness.route(ROUTE, steps=STEPS, canary={"by_header": "X-Canary"},
                                path_prefix="/")] + (extra_routes or [])
        proxy = self.start_proxy(harness.make_config(ups, routes, **kw))
        if start:
            proxy.op(ROUTE, "upstream", {"upstream": "green"})
            proxy.wait_status(lambda s: s["phase"] == "Paused" and s["step"] == 1,
                              name=ROUTE, what="Paused at step 1")
        return proxy

    def assertHistogramConsistent(self, m, route, variant):
        buckets = sorted((float(labels["le"]), v) for labels, v in
                         m.series("canary_proxy_request_duration_seconds_bucket")
                         if labels["route"] == route and labels["variant"] == variant)
        self.assertTrue(buckets, f"no buckets for {route}/{variant}")
        counts = [v for _, v in buckets]
        self.assertEqual(counts, sorted(counts), f"buckets not cumulative: {buckets}")
        self.assertEqual(buckets[-1][0], float("inf"))
        count = m.value("canary_proxy_request_duration_seconds_count", route=route,
                        variant=variant)
        self.assertEqual(buckets[-1][1], count, "the +Inf bucket differs from _count")
        return count


class PromtoolTest(MetricsTestBase):
    def test_promtool_accepts_live_scrapes(self):
        proxy = self.proxy_with_rollout(start=False)
        before = proxy.admin("GET", "/metrics").text
        r = promtool(before)
        self.assertEqual(r.returncode, 0, f"promtool on a fresh proxy:\n{r.stdout}{r.stderr}\n"
                                          f"{before}")
        proxy.op(ROUTE, "upstream", {"upstream": "green"})
        proxy.colors(50)
        proxy.colors(5, headers={"X-Canary": "always"})
        harness.raw_exchange(proxy.port, b"GET / HTTP/1.1\r\n\r\n")  # no Host: a local 400
        proxy.admin("POST", "/api/v1/config/reload")
        text = proxy.admin("GET", "/metrics").text
        r = promtool(text)
        sys.stderr.write(f"\n--- promtool check metrics (after traffic): exit {r.returncode}\n"
                         f"{r.stdout}{r.stderr}--- end\n")
        self.assertEqual(r.returncode, 0, f"promtool:\n{r.stdout}{r.stderr}\n{text}")
        self.assertEqual((r.stdout + r.stderr).strip(), "", "promtool reported lint problems")

    def test_families_types_and_label_names(self):
        proxy = self.proxy_with_rollout()
        proxy.colors(20)
        harness.raw_exchange(proxy.port, b"GET / HTTP/1.1\r\n\r\n")
        m = scrape(proxy)
        for name, kind in FAMILIES.items():
            self.assertEqual(m.types.get(name), kind, f"# TYPE of {name}")
        for (name, labels), _ in m.samples.items():
            self.assertTrue(name.startswith("canary_proxy_"), name)
            if name in LABELS:
                self.assertEqual({k for k, _ in labels}, LABELS[name], f"labels of {name}")
        self.assertEqual([v for _, v in m.series("canary_proxy_build_info")], [1])


class CounterTest(MetricsTestBase):
    def test_exact_counts_at_weight_20(self):
        proxy = self.proxy_with_rollout(workers=1)
        before = scrape(proxy)
        got = proxy.colors(100)
        self.assertEqual(got, {"blue": 80, "green": 20})
        after = scrape(proxy)

        def delta(name, **labels):
            return after.value(name, **labels) - before.value(name, **labels)

        self.assertEqual(delta("canary_proxy_requests_total", route=ROUTE, variant="stable",
                               upstream="blue", code="200"), 80)
        self.assertEqual(delta("canary_proxy_requests_total", route=ROUTE, variant="canary",
                               upstream="green", code="200"), 20)
        self.assertEqual(after.sum("canary_proxy_requests_total") -
                         before.sum("canary_proxy_requests_total"), 100)
        self.assertEqual(delta("canary_proxy_routing_decisions_total", route=ROUTE,
                               variant="stable", reason="weight"), 80)
        self.assertEqual(delta("canary_proxy_routing_decisions_total", route=ROUTE,
                               variant="canary", reason="weight"), 20)
        self.assertEqual(delta("canary_proxy_request_duration_seconds_count", route=ROUTE,
                               variant="stable"), 80)
        self.assertEqual(delta("canary_proxy_request_duration_seconds_count", route=ROUTE,
                               variant="canary"), 20)
        self.assertGreater(delta("canary_proxy_request_duration_seconds_sum", route=ROUTE,
                                 variant="canary"), 0)
        for variant in ("stable", "canary"):
            self.assertHistogramConsistent(after, ROUTE, variant)
        # One keep-alive connection for the 100 requests.
        self.assertEqual(delta("canary_proxy_connections_total"), 1)

    def test_decision_reasons(self):
        proxy = self.proxy_with_rollout(start=False, workers=1)
        m0 = scrape(proxy)
        proxy.colors(7)  # no rollout yet
        m1 = scrape(proxy)
        self.assertEqual(m1.value("canary_proxy_routing_decisions_total", route=ROUTE,
                                  variant="stable", reason="no_canary") -
                         m0.value("canary_proxy_routing_decisions_total", route=ROUTE,
                                  variant="stable", reason="no_canary"), 7)
        proxy.op(ROUTE, "upstream", {"upstream": "green"})
        self.assertEqual(proxy.colors(6, headers={"X-Canary": "always"}), {"green": 6})
        self.assertEqual(proxy.colors(4, headers={"X-Canary": "never"}), {"blue": 4})
        m2 = scrape(proxy)
        self.assertEqual(m2.value("canary_proxy_routing_decisions_total", route=ROUTE,
                                  variant="canary", reason="header"), 6)
        self.assertEqual(m2.value("canary_proxy_routing_decisions_total", route=ROUTE,
                                  variant="stable", reason="header"), 4)
        self.assertEqual(m2.value("canary_proxy_requests_total", route=ROUTE, variant="canary",
                                  upstream="green", code="200"), 6)

    def test_local_replies_and_upstream_errors(self):
        dead = f"127.0.0.1:{harness.closed_port()}"
        proxy = self.proxy_with_rollout(
            start=False, workers=1, extra_upstreams={"dead": dead},
            extra_routes=[harness.route("dead", upstream="dead", steps=[],
                                        path_prefix="/dead")])
        m0 = scrape(proxy)
        codes = [proxy.get("/dead/x").status for _ in range(3)]
        self.assertEqual(codes, [503, 503, 503])
        r = harness.raw_exchange(proxy.port, b"GET / HTTP/1.1\r\n\r\n")
        self.assertEqual(r.status, 400)
        m1 = scrape(proxy)

        def delta(name, **labels):
            return m1.value(name, **labels) - m0.value(name, **labels)

        self.assertEqual(delta("canary_proxy_local_replies_total", code="400"), 1)
        self.assertEqual(delta("canary_proxy_local_replies_total", code="503"), 3)
        self.assertGreaterEqual(delta("canary_proxy_upstream_errors_total", upstream="dead",
                                      reason="connect"), 1)
        # The proxy's own 503s count on the route's series as routed (error rates see them).
        self.assertEqual(delta("canary_proxy_requests_total", route="dead", variant="stable",
                               upstream="dead", code="503"), 3)

    def test_connections_reloads_and_build_info(self):
        proxy = self.proxy_with_rollout(start=False, workers=1)
        m0 = scrape(proxy)
        for _ in range(3):
            proxy.get("/color")  # one connection each
        c = harness.DataClient(proxy.port)
        self.addCleanup(c.close)
        c.color()
        m1 = scrape(proxy)
        self.assertEqual(m1.value("canary_proxy_connections_total") -
                         m0.value("canary_proxy_connections_total"), 4)
        harness.poll(lambda: scrape(proxy).value("canary_proxy_connections_active") == 1,
                     what="connections_active == 1 with one open keep-alive connection")

        self.assertEqual(proxy.admin("POST", "/api/v1/config/reload").status, 200)
        with open(proxy.config_path, "a") as f:
            f.write("bogus_key: 1\n")
        self.assertEqual(proxy.admin("POST", "/api/v1/config/reload").status, 422)
        m2 = scrape(proxy)
        self.assertEqual(m2.value("canary_proxy_config_reloads_total", result="success"), 1)
        self.assertEqual(m2.value("canary_proxy_config_reloads_total", result="failure"), 1)
        build = m2.series("canary_proxy_build_info")
        self.assertEqual(len(build), 1)
        self.assertRegex(build[0][0]["version"], r"^\d+\.\d+\.\d+")
        self.assertEqual(build[0][1], 1)


class RolloutGaugeTest(MetricsTestBase):
    def gauges(self, proxy):
        m = scrape(proxy)
        info = [labels for labels, v in m.series("canary_proxy_rollout_info")
                if labels["route"] == ROUTE]
        self.assertEqual(len(info), 1, info)
        self.assertEqual(m.series("canary_proxy_rollout_info")[0][1], 1)
        return (m.value("canary_proxy_rollout_weight", route=ROUTE),
                m.value("canary_proxy_rollout_step", route=ROUTE),
                info[0]["phase"], info[0]["stable"], info[0].get("canary", ""))

    def test_gauges_follow_the_steps(self):
        proxy = self.proxy_with_rollout(start=False)
        self.assertEqual(self.gauges(proxy), (0, len(STEPS), "Healthy", "blue", ""))
        proxy.op(ROUTE, "upstream", {"upstream": "green"})
        self.assertEqual(self.gauges(proxy), (20, 1, "Paused", "blue", "green"))
        proxy.op(ROUTE, "promote")
        self.assertEqual(self.gauges(proxy), (50, 3, "Paused", "blue", "green"))
        proxy.op(ROUTE, "weight", {"weight": 35})
        self.assertEqual(self.gauges(proxy)[0], 35)
        proxy.op(ROUTE, "abort")
        self.assertEqual(self.gauges(proxy), (0, 0, "Degraded", "blue", "green"))
        proxy.op(ROUTE, "retry")
        self.assertEqual(self.gauges(proxy), (20, 1, "Paused", "blue", "green"))
        proxy.op(ROUTE, "promote", {"full": True})
        self.assertEqual(self.gauges(proxy), (0, len(STEPS), "Healthy", "green", ""))


class StatsTest(MetricsTestBase):
    def stats(self, proxy):
        r = proxy.admin("GET", "/api/v1/stats")
        self.assertEqual(r.status, 200, r)
        self.assertIn("application/json", r.header("Content-Type"))
        return r.json()

    def route_stats(self, body, route=ROUTE):
        for r in body["routes"]:
            if r["route"] == route:
                return r["variants"]
        raise AssertionError(f"no route {route} in {body}")

    def test_shape_before_traffic(self):
        proxy = self.proxy_with_rollout(start=False)
        body = self.stats(proxy)
        self.assertEqual(body["window_s"], 10)
        v = self.route_stats(body)
        for name in ("stable", "canary"):
            self.assertEqual(set(v[name]) >= {"rps", "error_rate", "p50_ms", "p99_ms", "share"},
                             True, v[name])
            self.assertEqual(v[name]["rps"], 0)
            self.assertIsNone(v[name]["p50_ms"])
            self.assertIsNone(v[name]["p99_ms"])
        self.assertEqual(proxy.admin("POST", "/api/v1/stats").status, 405)

    def test_rates_share_errors_and_latency(self):
        blue = self.start_backend("blue")
        green = self.start_backend("green", ["--error-rate", "1"])
        proxy = self.start_proxy(harness.make_config(
            {"blue": blue.endpoint, "green": green.endpoint},
            [harness.route(ROUTE, steps=STEPS)], workers=1))
        proxy.op(ROUTE, "upstream", {"upstream": "green"})
        client = harness.DataClient(proxy.port)
        self.addCleanup(client.close)
        codes = [client.request("GET", "/color").status for _ in range(100)]
        self.assertEqual(codes.count(500), 20)

        def settled():
            v = self.route_stats(self.stats(proxy))
            total = v["stable"]["share"] + v["canary"]["share"]
            if v["stable"]["rps"] > 0 and v["canary"]["rps"] > 0 and abs(total - 1) < 1e-6 \
                    and abs(v["canary"]["share"] - 0.2) < 1e-6:
                return v
            return None

        v = harness.poll(settled, timeout=5, interval=0.2, what="stats covering the 100 requests")
        self.assertAlmostEqual(v["stable"]["share"], 0.8)
        self.assertEqual(v["stable"]["error_rate"], 0)
        self.assertEqual(v["canary"]["error_rate"], 1)
        for name in ("stable", "canary"):
            self.assertGreater(v[name]["p50_ms"], 0)
            self.assertGreaterEqual(v[name]["p99_ms"], v[name]["p50_ms"])
            self.assertLess(v[name]["p99_ms"], 10000)
            # 100 requests over a window of at most 10 s (fewer seconds when just started).
            self.assertGreaterEqual(v[name]["rps"], 80 / 10 if name == "stable" else 20 / 10)


if __name__ == "__main__":
    unittest.main()
