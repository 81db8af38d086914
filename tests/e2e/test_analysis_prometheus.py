"""The prometheus analysis provider end to end (docs/analysis.md): the real canary-proxy asks a
real Prometheus server (Debian's `prometheus` package, or CANARY_PROMETHEUS) every interval and
acts on the answer. A value below `min` aborts the rollout; a value within bounds lets a timed
pause complete; an empty vector is Inconclusive and pauses past inconclusive_limit; a stopped
(refused) or frozen (timeout) Prometheus gives Errors and aborts past error_limit; and a query
over the proxy's own /metrics, scraped by Prometheus every second, gates a timed pause on real
traffic. The other queries are constant or templated expressions that need no scraped data. A
missing binary fails the tests (`make deps` installs it) rather than skipping them unseen.
Every Prometheus runs on 127.0.0.1 port 0 with its own temp storage and is stopped by cleanup."""

import os
import shutil
import signal
import subprocess
import unittest
import urllib.parse

from harness import E2ETestCase, DataClient, Process, http_call, make_config, poll

from test_analysis import ColorServer

NAME = "checkout"
# Prometheus opens its TSDB and loads its config before /-/ready answers 200.
PROM_READY_SECONDS = 30.0
# A rollout decision takes a few intervals (500 ms each) plus a query.
DECISION_SECONDS = 20.0
PROM_LISTEN_RX = r'msg="Listening on" address=127\.0\.0\.1:(\d+)'


def prometheus_binary():
    return os.environ.get("CANARY_PROMETHEUS") or shutil.which("prometheus") or \
        "/usr/bin/prometheus"


class PrometheusServer:
    """A Prometheus on 127.0.0.1:<free port> with storage under `workdir`; `scrape_admin`
    rewrites its config to scrape a proxy's /metrics every second and reloads it (SIGHUP)."""

    def __init__(self, workdir):
        self.dir = workdir
        os.makedirs(os.path.join(workdir, "data"), exist_ok=True)
        self.config_path = os.path.join(workdir, "prometheus.yml")
        self._write_config("")
        # Port 0: the kernel picks the port, Prometheus logs it ("Listening on").
        self.process = Process([
            prometheus_binary(),
            "--config.file=" + self.config_path,
            "--web.listen-address=127.0.0.1:0",
            "--storage.tsdb.path=" + os.path.join(workdir, "data"),
            "--log.level=info",
        ])
        try:
            m = self.process.wait_for_log(PROM_LISTEN_RX, PROM_READY_SECONDS)
            self.port = int(m.group(1))
            poll(lambda: http_call(self.port, "GET", "/-/ready").status == 200,
                 timeout=PROM_READY_SECONDS, interval=0.1, what="prometheus /-/ready -> 200")
        except AssertionError as e:
            self.process.kill()
            raise AssertionError(f"{e}\n{self.process.output()}") from None

    @property
    def address(self):
        return f"http://127.0.0.1:{self.port}"

    def _write_config(self, scrape):
        with open(self.config_path + ".tmp", "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n" + scrape)
        os.replace(self.config_path + ".tmp", self.config_path)

    def scrape_admin(self, admin_port):
        self._write_config(
            "scrape_configs:\n"
            "  - job_name: canary-proxy\n"
            "    scrape_interval: 1s\n"
            "    static_configs:\n"
            f"      - targets: ['127.0.0.1:{admin_port}']\n")
        mark = self.process.log_mark()
        self.process.signal(signal.SIGHUP)
        self.process.wait_for_log(r"Completed loading of configuration file", mark=mark)

    def logs(self):
        return self.process.output()

    def query(self, q):
        r = http_call(self.port, "GET", "/api/v1/query?query=" + _quote(q))
        return r.json()["data"]["result"]

    def stop(self):
        """SIGTERM (a clean TSDB close), SIGKILL when it lingers; safe to call twice."""
        self.process.signal(signal.SIGCONT)  # a frozen one would hold SIGTERM pending
        self.process.signal(signal.SIGTERM)
        try:
            self.process.wait(PROM_READY_SECONDS)
        except subprocess.TimeoutExpired:
            pass
        self.process.kill()


def _quote(q):
    return urllib.parse.quote(q, safe="")


class PrometheusAnalysisTest(E2ETestCase):

    def setUp(self):
        super().setUp()
        self.assertTrue(os.access(prometheus_binary(), os.X_OK),
                        f"{prometheus_binary()} missing: install Debian's prometheus package "
                        "(make deps)")
        self.prom = PrometheusServer(self.path("prometheus"))
        self.addCleanup(self._dump_logs_on_failure, self.prom)
        self.addCleanup(self.prom.stop)
        self.blue = self.server("blue")
        self.green = self.server("green")

    def server(self, color):
        s = ColorServer(color)
        self.addCleanup(s.stop)
        return s

    def metric(self, query, timeout="2s", **bounds):
        m = {"name": "prom", "prometheus": {"address": self.prom.address, "query": query,
                                            "timeout": timeout}}
        m.update(bounds)
        return m

    def proxy_with(self, metric, steps, **analysis):
        an = {"interval": "500ms", "inconclusive_limit": 1000, "metrics": [metric]}
        an.update(analysis)
        r = {"name": NAME, "path_prefix": "/", "upstream": "blue", "steps": steps,
             "analysis": an}
        cfg = make_config({"blue": self.blue.address, "green": self.green.address}, [r])
        proxy = self.start_proxy(cfg)
        proxy.op(NAME, "upstream", {"upstream": "green"})
        return proxy

    def measurements(self, proxy):
        r = proxy.admin("GET", f"/api/v1/rollouts/{NAME}/analysis")
        self.assertEqual(r.status, 200, r.text)
        return r.json()["measurements"]

    def test_value_below_min_fails_and_aborts(self):
        proxy = self.proxy_with(self.metric("vector(0.5)", min=0.9),
                                [{"setWeight": 50}, {"pause": {}}])
        s = proxy.wait_status(lambda s: s["phase"] == "Degraded", NAME, timeout=DECISION_SECONDS,
                              what="an abort")
        self.assertEqual(s["message"], "AnalysisFailed: prom: 0.5 < min 0.9")
        self.assertEqual(s["actual_weight"], 0)
        m = s["analysis"]["metrics"][0]
        self.assertEqual(m["kind"], "prometheus")
        self.assertEqual(m["phase"], "Failed")
        self.assertEqual(m["failed"], 1)
        self.assertEqual(m["last"]["value"], 0.5)
        self.assertEqual(s["analysis"]["phase"], "Failed")
        last = proxy.events(NAME)["events"][-1]
        self.assertEqual(last["cause"], "analysis")
        self.assertEqual(last["to"], "Degraded")
        failed = [x for x in self.measurements(proxy) if x["phase"] == "Failed"]
        self.assertEqual(len(failed), 1, failed)
        self.assertEqual(failed[0]["metric"], "prom")
        self.assertEqual(failed[0]["value"], 0.5)
        self.assertEqual(failed[0]["message"], "0.5 < min 0.9")
        text = proxy.admin("GET", "/metrics").text
        self.assertRegex(text, r'canary_proxy_analysis_value\{[^}]*metric="prom"[^}]*'
                               r'variant="canary"[^}]*\} 0\.5')

    def test_value_within_bounds_lets_a_timed_pause_complete(self):
        # {{interval}} is the analysis interval in whole seconds (1s here).
        steps = [{"setWeight": 50}, {"pause": {"duration": "1s"}}, {"setWeight": 80},
                 {"pause": {}}]
        proxy = self.proxy_with(self.metric("vector({{interval}}) * 2", min=1.5, max=2.5),
                                steps, interval="1s")
        s = proxy.wait_status(lambda s: s["step"] == 3, NAME, timeout=DECISION_SECONDS,
                              what="the step after the timed pause")
        self.assertEqual(s["phase"], "Paused")
        self.assertEqual(s["paused_by"], "step")
        self.assertEqual(s["weight"], 80)
        m = s["analysis"]["metrics"][0]
        self.assertGreaterEqual(m["successful"], 1)
        self.assertEqual(m["failed"] + m["errors"] + m["inconclusive"], 0, m)
        self.assertEqual(m["last"]["value"], 2)
        ok = [x for x in self.measurements(proxy) if x["phase"] == "Successful"]
        self.assertTrue(ok)
        self.assertTrue(all(x["value"] == 2 and x["metric"] == "prom" for x in ok), ok)

    def test_empty_vector_is_inconclusive_and_pauses(self):
        proxy = self.proxy_with(self.metric("vector(1) > 2", max=5),
                                [{"setWeight": 50}, {"pause": {"duration": "1s"}}],
                                inconclusive_limit=2)
        s = proxy.wait_status(lambda s: s["paused_by"] == "analysis", NAME,
                              timeout=DECISION_SECONDS, what="a pause by analysis")
        self.assertEqual(s["phase"], "Paused")
        self.assertEqual(s["step"], 1)
        self.assertTrue(s["message"].startswith("AnalysisInconclusive: prom: 3 consecutive"),
                        s["message"])
        m = s["analysis"]["metrics"][0]
        self.assertEqual(m["phase"], "Inconclusive")
        # Measuring goes on while paused: more may have come since.
        self.assertGreaterEqual(m["inconclusive"], 3)
        self.assertEqual(m["last"]["message"], "no data (empty vector)")
        self.assertEqual(proxy.events(NAME)["events"][-1]["cause"], "analysis")

    def test_stopped_prometheus_errors_abort_past_error_limit(self):
        proxy = self.proxy_with(self.metric("vector(1)", min=0.5),
                                [{"setWeight": 50}, {"pause": {}}], error_limit=2)
        proxy.wait_status(lambda s: s["analysis"]["metrics"][0]["successful"] >= 1, NAME,
                          timeout=DECISION_SECONDS, what="a Successful measurement")
        self.prom.stop()
        s = proxy.wait_status(lambda s: s["phase"] == "Degraded", NAME, timeout=DECISION_SECONDS,
                              what="an abort")
        self.assertTrue(s["message"].startswith("AnalysisFailed: prom: 3 consecutive errors"),
                        s["message"])
        self.assertTrue(s["message"].endswith("last: connect: Connection refused"),
                        s["message"])
        m = s["analysis"]["metrics"][0]
        self.assertEqual(m["last"]["phase"], "Error")
        self.assertEqual(m["errors"], 3)
        self.assertEqual(m["failed"], 0)
        self.assertEqual(s["analysis"]["phase"], "Error")
        self.assertEqual(proxy.events(NAME)["events"][-1]["cause"], "analysis")

    def test_frozen_prometheus_times_out_and_aborts_past_error_limit(self):
        # SIGSTOP: the socket still accepts connections (the kernel's backlog) but nothing
        # answers, so every query ends at the provider's timeout.
        proxy = self.proxy_with(self.metric("vector(1)", timeout="1s", min=0.5),
                                [{"setWeight": 50}, {"pause": {}}], error_limit=1)
        proxy.wait_status(lambda s: s["analysis"]["metrics"][0]["successful"] >= 1, NAME,
                          timeout=DECISION_SECONDS, what="a Successful measurement")
        self.prom.process.signal(signal.SIGSTOP)
        s = proxy.wait_status(lambda s: s["phase"] == "Degraded", NAME, timeout=DECISION_SECONDS,
                              what="an abort")
        self.assertTrue(s["message"].startswith("AnalysisFailed: prom: 2 consecutive errors"),
                        s["message"])
        self.assertTrue(s["message"].endswith("last: timeout after 1s"), s["message"])
        m = s["analysis"]["metrics"][0]
        self.assertEqual(m["errors"], 2)
        self.assertEqual(m["last"]["phase"], "Error")

    def test_query_over_the_proxys_scraped_metrics_gates_a_pause(self):
        # The canary's requests as Prometheus scraped them from the proxy's admin /metrics:
        # empty (Inconclusive) until a scrape has seen canary traffic, then a count.
        q = ('sum(canary_proxy_requests_total{route="{{route}}",upstream="{{canary}}"})')
        steps = [{"setWeight": 50}, {"pause": {"duration": "1s"}}, {"setWeight": 80},
                 {"pause": {}}]
        proxy = self.proxy_with(self.metric(q, min=20), steps)
        self.prom.scrape_admin(proxy.admin_port)
        client = DataClient(proxy.port)
        self.addCleanup(client.close)
        bodies = [client.request("GET", "/", headers={"X-Canary": "always"}).text
                  for _ in range(30)]
        self.assertEqual(set(bodies), {"green"})
        s = proxy.wait_status(lambda s: s["step"] == 3, NAME, timeout=DECISION_SECONDS,
                              what="the step after the timed pause")
        self.assertEqual(s["weight"], 80)
        m = s["analysis"]["metrics"][0]
        self.assertEqual(m["last"]["phase"], "Successful")
        self.assertGreaterEqual(m["last"]["value"], 30)
        self.assertEqual(m["failed"] + m["errors"], 0, m)
        # Prometheus did scrape the proxy: the series is there under the job's label.
        series = self.prom.query('canary_proxy_requests_total{job="canary-proxy",'
                                 f'route="{NAME}",upstream="green"}}')
        self.assertTrue(series)
        ok = [x for x in self.measurements(proxy) if x["phase"] == "Successful"]
        self.assertTrue(ok and all(x["value"] >= 20 for x in ok), ok)


if __name__ == "__main__":
    unittest.main()
