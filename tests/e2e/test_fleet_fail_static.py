"""Fail static of a fleet replica (docs/fleet.md): one canary-proxy with state_store etcd on a
one-member etcd on 127.0.0.1 (Debian's etcd-server, free ports, a temporary data directory).

* etcd stopped: routing as before, /readyz 200, changes 503, canary_proxy_state_store_up 0;
  after stale_canary_after every request goes to stable (weight and X-Canary header override),
  the state unchanged; etcd back: the canary routes again with no other shift.
* a start with etcd unreachable and no cached state exits 1 with a clear message.
"""

import os
import shutil
import subprocess
import unittest

from harness import (DEADLINE, E2ETestCase, Process, closed_port, make_config, poll, route)

ROUTE = "canary-demo"


class Etcd:
    """One etcd member; stop() and start() keep its data directory."""

    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "etcd")
        self.port = closed_port()
        self.peer = closed_port()
        self.proc = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        peer = f"http://127.0.0.1:{self.peer}"
        exe = shutil.which("etcd") or "/usr/bin/etcd"
        self.proc = Process([exe, "--name=m", f"--data-dir={self.dir}",
                             f"--listen-client-urls={self.url}",
                             f"--advertise-client-urls={self.url}",
                             f"--listen-peer-urls={peer}",
                             f"--initial-advertise-peer-urls={peer}",
                             f"--initial-cluster=m={peer}"])
        poll(lambda: subprocess.run(
            ["etcdctl", f"--endpoints={self.url}", "endpoint", "health"],
            capture_output=True, env={**os.environ, "ETCDCTL_API": "3"},
            timeout=DEADLINE).returncode == 0, timeout=20, interval=0.1, what="etcd healthy")

    def stop(self):
        if self.proc:
            self.proc.kill()


def metric_value(proxy, name):
    for line in proxy.admin("GET", "/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


class FleetFailStaticTest(E2ETestCase):
    def fleet_config(self, etcd_url, blue, green, stale="2s"):
        return make_config(
            {"blue": blue.endpoint, "green": green.endpoint},
            [route(steps=[{"setWeight": 50}, {"pause": {}}])],
            extra={"state_store": {"type": "etcd", "etcd": {
                "endpoints": [etcd_url], "lease_ttl": "2s", "dial_timeout": "500ms",
                "replica_id": "solo", "stale_canary_after": stale}}})

    def test_disconnected_routes_as_before_then_stable_then_resyncs(self):
        etcd = Etcd(self.tmp)
        self.addCleanup(etcd.stop)
        etcd.start()
        blue, green = self.blue_green()
        p = self.start_proxy(self.fleet_config(etcd.url, blue, green))
        p.op(ROUTE, "upstream", {"upstream": "green"})
        p.wait_status(lambda s: s["weight"] == 50 and s["store"] == "connected")
        poll(lambda: metric_value(p, "canary_proxy_state_store_up") == 1, what="store up")
        self.assertGreater(p.colors(40)["green"], 0)
        self.assertEqual(p.colors(5, headers={"X-Canary": "always"}), {"green": 5})

        etcd.stop()
        p.wait_status(lambda s: s["store"] == "disconnected", what="store disconnected")
        self.assertEqual(metric_value(p, "canary_proxy_state_store_up"), 0)
        self.assertEqual(p.admin("GET", "/readyz").status, 200)
        r = p.op(ROUTE, "promote", expect=None)
        self.assertEqual(r.status, 503, r.text)
        self.assertTrue(r.json()["error"].startswith("state store unavailable: "), r.text)

        # stale_canary_after (2s): canary-bound traffic goes to stable, the state stays.
        p.process.wait_for_log(r"STATE STORE DISCONNECTED TOO LONG", timeout=DEADLINE)
        self.assertEqual(p.colors(40), {"blue": 40})
        self.assertEqual(p.colors(5, headers={"X-Canary": "always"}), {"blue": 5})
        s = p.status(ROUTE)
        self.assertEqual((s["canary"], s["weight"], s["actual_weight"]), ("green", 50, 0))

        etcd.start()
        p.wait_status(lambda s: s["store"] == "connected", timeout=20, what="store connected")
        self.assertEqual(p.colors(5, headers={"X-Canary": "always"}), {"green": 5})
        s = p.status(ROUTE)
        self.assertEqual((s["canary"], s["weight"], s["phase"]), ("green", 50, "Paused"))
        p.op(ROUTE, "promote")

    def test_start_without_etcd_or_cached_state_exits_1(self):
        blue, green = self.blue_green()
        proxy = self.new_proxy(self.fleet_config(f"http://127.0.0.1:{closed_port()}", blue,
                                                 green))
        rc, out = proxy.start_expect_failure()
        self.assertEqual(rc, 1, out)
        self.assertIn("state store unavailable and no cached state in", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
