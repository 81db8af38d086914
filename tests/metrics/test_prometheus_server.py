"""A real Prometheus server (/usr/bin/prometheus, Debian's `prometheus` package) scrapes the
proxy's admin listener every second; its HTTP API must show the target up with no scrape error
and the request series of both variants. Everything on 127.0.0.1, storage in a temporary
directory, the server stopped at the end; bounded to 60 s."""

import json
import os
import shutil
import sys
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

import harness  # noqa: E402

# CANARY_PROMETHEUS: another prometheus binary.
PROMETHEUS = (os.environ.get("CANARY_PROMETHEUS") or shutil.which("prometheus") or
              "/usr/bin/prometheus")
ROUTE = "canary-demo"
STEPS = [{"setWeight": 20}, {"pause": {}}]
BUDGET_S = 60


class PrometheusServerTest(harness.E2ETestCase):
    def start_prometheus(self, target_port):
        port = harness.closed_port()
        data = self.path("tsdb")
        os.makedirs(data)
        config = self.write("prometheus.yml", (
            "global:\n"
            "  scrape_interval: 1s\n"
            "  scrape_timeout: 1s\n"
            "  evaluation_interval: 1s\n"
            "scrape_configs:\n"
            "  - job_name: canary-proxy\n"
            "    static_configs:\n"
            f"      - targets: ['127.0.0.1:{target_port}']\n"))
        p = harness.Process([PROMETHEUS, f"--config.file={config}",
                             f"--web.listen-address=127.0.0.1:{port}",
                             f"--storage.tsdb.path={data}",
                             "--storage.tsdb.retention.time=1h",
                             "--log.level=warn"], cwd=self.tmp)
        self.addCleanup(p.kill)

        def ready():
            if not p.alive():
                raise AssertionError(f"prometheus exited:\n{p.output()}")
            return harness.http_call(port, "GET", "/-/ready", timeout=2).status == 200

        harness.poll(ready, timeout=20, interval=0.2, what="prometheus /-/ready")
        return p, port

    def query(self, port, expr):
        r = harness.http_call(port, "GET", "/api/v1/query?" + urllib.parse.urlencode(
            {"query": expr}), timeout=5)
        if r.status != 200:
            raise AssertionError(f"query {expr}: {r.status} {r.text}")
        body = r.json()
        if body.get("status") != "success":
            raise AssertionError(f"query {expr}: {body}")
        return body["data"]["result"]

    def test_prometheus_scrapes_the_admin_listener(self):
        # `make test` installs it (make deps): missing, the test fails rather than skip unseen.
        self.assertTrue(os.access(PROMETHEUS, os.X_OK),
                        f"{PROMETHEUS} missing: install Debian's prometheus package (make deps)")
        started = time.monotonic()
        blue, green = self.blue_green()
        proxy = self.start_proxy(harness.make_config(
            {"blue": blue.endpoint, "green": green.endpoint},
            [harness.route(ROUTE, steps=STEPS)], workers=1))
        proxy.op(ROUTE, "upstream", {"upstream": "green"})
        self.assertEqual(proxy.colors(50), {"blue": 40, "green": 10})
        prom, port = self.start_prometheus(proxy.admin_port)
        left = lambda: max(1.0, BUDGET_S - 5 - (time.monotonic() - started))  # noqa: E731

        up = harness.poll(lambda: [s for s in self.query(port, 'up{job="canary-proxy"}')
                                   if s["value"][1] == "1"],
                          timeout=left(), interval=0.5, what="up == 1")
        self.assertEqual(up[0]["metric"]["instance"], f"127.0.0.1:{proxy.admin_port}")

        targets = harness.http_call(port, "GET", "/api/v1/targets", timeout=5).json()
        active = targets["data"]["activeTargets"]
        self.assertEqual(len(active), 1, active)
        self.assertEqual(active[0]["health"], "up", active[0])
        self.assertEqual(active[0]["lastError"], "", active[0])

        series = harness.poll(
            lambda: (lambda r: r if {s["metric"].get("variant") for s in r} >=
                     {"stable", "canary"} else None)(
                self.query(port, f'canary_proxy_requests_total{{route="{ROUTE}"}}')),
            timeout=left(), interval=0.5, what="request series of both variants")
        by_variant = {s["metric"]["variant"]: float(s["value"][1]) for s in series}
        self.assertEqual(by_variant, {"stable": 40, "canary": 10})
        info = self.query(port, f'canary_proxy_rollout_info{{route="{ROUTE}"}}')
        self.assertEqual(info[0]["metric"]["phase"], "Paused")
        self.assertEqual(
            float(self.query(port, f'canary_proxy_rollout_weight{{route="{ROUTE}"}}')[0]
                  ["value"][1]), 20)
        self.assertLess(time.monotonic() - started, BUDGET_S)


if __name__ == "__main__":
    unittest.main()
