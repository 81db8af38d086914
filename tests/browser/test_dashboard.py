"""The dashboard (GET / on the admin listener) in a real browser: headless /usr/bin/chromium
driven by playwright-core (tests/browser/dashboard.mjs, `npm ci` here first when node_modules is
missing). The proxy and the demo backends come from tests/e2e/harness.py; a background thread
sends traffic so the per-variant numbers and charts have something to show.

- promote: the page shows the phase and the steps with the current one marked, per-variant
  rates; a click on Promote advances the step; a timed pause then passes with no reload. The
  screenshot goes to $DASHBOARD_SCREENSHOT_DIR/dashboard.png (the build directory under ctest).
- token: with admin.token_file, Promote asks for the token once (a prompt) and succeeds.
- restart: the page reconnects after a proxy restart and follows a change made after it.
- analysis fixture: the page's status, event stream and GET .../analysis answered from a known
  analysis block (request interception in the browser; the stats stay live): the metrics table
  shows each metric's phase, last value against its bound and counts, each chart marks the three
  failed measurements; with "analysis": null the section and the marks go; GET /api/v1/cluster
  answered as an etcd fleet's replica shows the leader and the store state in the header, then
  the store lost. The screenshot goes to dashboard-analysis.png.
- analysis live: a route with analysis and a canary failing half its requests; the page, open
  before the canary starts, shows the metrics, the abort by analysis and the marks by itself.
  Skipped (saying so) by a canary-proxy whose loader does not know `analysis` yet.
Every scenario fails on any page error or console error.
"""

import os
import re
import shutil
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

import harness  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOT_DIR = os.environ.get("DASHBOARD_SCREENSHOT_DIR") or os.path.join(
    harness.REPO_ROOT, "build")
NODE_TIMEOUT = 90

# setWeight 20 -> manual pause (the page's starting point) -> setWeight 50 -> a 2 s pause the
# page must see pass by itself -> setWeight 70 -> manual pause.
STEPS = [
    {"setWeight": 20},
    {"pause": {}},
    {"setWeight": 50},
    {"pause": {"duration": "2s"}},
    {"setWeight": 70},
    {"pause": {}},
]


def setUpModule():
    missing = [p for p in (CHROMIUM, shutil.which("node"), shutil.which("npm")) if not p]
    if not os.access(CHROMIUM, os.X_OK) or missing:
        raise unittest.SkipTest(f"needs {CHROMIUM}, node and npm (make deps installs them)")
    if not os.path.isdir(os.path.join(HERE, "node_modules", "playwright-core")):
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE,
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise AssertionError(f"npm ci failed in {HERE}:\n{r.stdout}\n{r.stderr}")


# Background analysis every second: the sequential comparison with stable and a success-rate
# threshold; a canary failing half its requests fails both within seconds.
ANALYSIS = {
    "background": True,
    "interval": "1s",
    "metrics": [
        {"name": "errors", "builtin": "error_rate_vs_stable", "confidence": 0.99,
         "min_requests": 20},
        {"name": "success", "builtin": "success_rate", "min": 0.9, "min_requests": 5},
    ],
}


class Traffic(threading.Thread):
    """~50 requests/s to the data plane until stopped (as the demo page does)."""

    def __init__(self, port):
        super().__init__(daemon=True, name="traffic")
        self.port = port
        self.stopping = threading.Event()
        self.count = 0

    def run(self):
        client = None
        while not self.stopping.is_set():
            try:
                if client is None:
                    client = harness.DataClient(self.port)
                client.request("GET", "/color")
                self.count += 1
            except Exception:  # the proxy restarting, a backend error: keep going
                if client:
                    client.close()
                client = None
                self.stopping.wait(0.2)
            self.stopping.wait(0.02)
        if client:
            client.close()

    def stop(self):
        self.stopping.set()
        self.join(5)


class DashboardTest(harness.E2ETestCase):
    def start(self, token=None, admin_port=None):
        blue = self.start_backend("blue", ["--latency", "2ms"])
        green = self.start_backend("green", ["--error-rate", "0.05", "--latency", "5ms"])
        token_file = None
        if token:
            token_file = self.write("token", token + "\n")
        cfg = harness.make_config({"blue": blue.endpoint, "green": green.endpoint},
                                  [harness.route(steps=STEPS)], token_file=token_file)
        if admin_port:
            cfg["admin"]["listen"] = f"127.0.0.1:{admin_port}"
        proxy = self.start_proxy(cfg)
        headers = {"Authorization": f"Bearer {token}"} if token else None
        proxy.op("canary-demo", "upstream", {"upstream": "green"}, headers=headers)
        proxy.wait_status(lambda s: s["phase"] == "Paused" and s["step"] == 1,
                          what="Paused at step 1")
        traffic = Traffic(proxy.port)
        traffic.start()
        self.addCleanup(traffic.stop)
        return proxy, traffic

    def node(self, scenario, proxy, screenshot=None, token=None, on_line=None):
        env = dict(os.environ, CHROMIUM=CHROMIUM)
        if token:
            env["DASHBOARD_TOKEN"] = token
        argv = ["node", os.path.join(HERE, "dashboard.mjs"), scenario, proxy.admin_url]
        if screenshot:
            argv.append(screenshot)
        p = subprocess.Popen(argv, cwd=HERE, env=env, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        out = []
        deadline = time.monotonic() + NODE_TIMEOUT
        killer = threading.Timer(NODE_TIMEOUT, p.kill)
        killer.start()
        try:
            for line in p.stdout:
                out.append(line)
                sys.stderr.write(line)
                if on_line:
                    on_line(line.strip(), p)
            rc = p.wait(max(1, deadline - time.monotonic()))
        finally:
            killer.cancel()
            for f in (p.stdin, p.stdout):
                try:
                    f.close()
                except OSError:
                    pass
        text = "".join(out)
        self.assertEqual(rc, 0, f"dashboard.mjs {scenario} failed:\n{text}")
        return text

    def test_promote_and_timed_pause(self):
        proxy, traffic = self.start()
        os.makedirs(SCREENSHOT_DIR, exist_ok=True)
        shot = os.path.join(SCREENSHOT_DIR, "dashboard.png")
        if os.path.exists(shot):
            os.remove(shot)
        self.node("promote", proxy, screenshot=shot)
        self.assertTrue(os.path.getsize(shot) > 10000, "screenshot missing or empty")
        s = proxy.status()
        self.assertEqual((s["phase"], s["step"], s["weight"]), ("Paused", 5, 70))
        self.assertGreater(traffic.count, 50)

    def test_token_prompt(self):
        token = "s3cret-token"
        proxy, _ = self.start(token=token)
        self.node("token", proxy, token=token)
        s = proxy.status()
        self.assertEqual((s["step"], s["paused_by"]), (3, "user"))

    def test_reconnects_after_restart(self):
        port = harness.closed_port()
        proxy, _ = self.start(admin_port=port)

        def on_line(line, p):
            if line == "@@ready-for-restart":
                proxy.restart()  # SIGTERM: a graceful restart with the page connected
                self.assertEqual(proxy.admin_port, port)
                proxy.op("canary-demo", "promote")
                p.stdin.write("restarted\n")
                p.stdin.flush()

        self.node("restart", proxy, on_line=on_line)

    def test_analysis_fixture(self):
        proxy, _ = self.start()
        os.makedirs(SCREENSHOT_DIR, exist_ok=True)
        shot = os.path.join(SCREENSHOT_DIR, "dashboard-analysis.png")
        self.node("analysis-fixture", proxy, screenshot=shot)
        self.assertTrue(os.path.getsize(shot) > 10000, "screenshot missing or empty")

    def test_analysis_live(self):
        blue = self.start_backend("blue", ["--latency", "2ms"])
        bad = self.start_backend("green", ["--error-rate", "0.5"])
        r = harness.route(steps=[{"setWeight": 50}, {"pause": {}}])
        r["analysis"] = ANALYSIS
        cfg = harness.make_config({"blue": blue.endpoint, "green": bad.endpoint}, [r])
        check = self.write("check.yaml", harness.to_yaml(harness.concrete_ports(cfg)) + "\n")
        p = subprocess.run([harness.binary("canary-proxy"), "--config", check, "--check"],
                           capture_output=True, text=True, timeout=harness.DEADLINE)
        if p.returncode != 0 and re.search(r'unknown key "analysis"', p.stdout + p.stderr):
            self.skipTest("this canary-proxy does not load route analysis: " +
                          (p.stdout + p.stderr).strip())
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        proxy = self.start_proxy(cfg)
        traffic = Traffic(proxy.port)

        def on_line(line, node):
            if line == "@@ready-for-canary":
                proxy.op("canary-demo", "upstream", {"upstream": "green"})
                traffic.start()
                self.addCleanup(traffic.stop)
                node.stdin.write("started\n")
                node.stdin.flush()

        self.node("analysis", proxy, on_line=on_line)
        s = proxy.status()
        self.assertEqual(s["phase"], "Degraded")
        self.assertTrue(s["message"].startswith("AnalysisFailed"), s["message"])


if __name__ == "__main__":
    unittest.main()
