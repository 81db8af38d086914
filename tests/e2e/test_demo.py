"""The demo as `make run` starts it, on ports the kernel picks.

scripts/run-demo.sh starts the demo backends on the endpoints of config/canary-demo.yaml; here
each backend runs with the script's own arguments (its --listen moved to port 0) and the proxy
with the demo config itself, its addresses rewritten to those ports (listeners on port 0, state
file in the test's directory).

- every upstream of the demo config is a backend the script starts, on the endpoint's port, with
  the upstream's name as its colour;
- yellow, the faulty version, answers every other /color with 500 (--error-rate 0.5);
- the README walk: with traffic like the demo page's, `canaryctl set-upstream canary-demo yellow`
  and the proxy aborts by itself (AnalysisFailed, event cause analysis, everything back to blue),
  while green passes the same analysis and stays at the manual pause.
"""

import os
import re
import shlex
import time

from harness import REPO_ROOT, Backend, DataClient, E2ETestCase, Proxy, ctl

SCRIPT = os.path.join(REPO_ROOT, "scripts", "run-demo.sh")
CONFIG = os.path.join(REPO_ROOT, "config", "canary-demo.yaml")
ROUTE = "canary-demo"
# The script's backend lines: "$bin/demo-backend" ARGS & pids+=($!)
BACKEND_RX = re.compile(r'^"\$bin/demo-backend" (.*?) & pids\+=\(\$!\)$', re.M)


def script_backends():
    """{port: argv after the binary} of every backend run-demo.sh starts."""
    out = {}
    for m in BACKEND_RX.finditer(open(SCRIPT).read()):
        argv = shlex.split(m.group(1))
        listen = argv[argv.index("--listen") + 1]
        out[int(listen.rsplit(":", 1)[1])] = argv
    return out


def config_upstreams(text):
    """{upstream name: [endpoint ports]} of the demo config (its simple block layout)."""
    block = re.search(r"^upstreams:\n(.*?)^\S", text, re.M | re.S).group(1)
    out = {}
    for m in re.finditer(r"^  (\w[\w-]*):.*\n    endpoints: \[([^\]]*)\]", block, re.M):
        out[m.group(1)] = [int(p) for p in re.findall(r'"127\.0\.0\.1:(\d+)"', m.group(2))]
    return out


def flag(argv, name):
    return argv[argv.index(name) + 1] if name in argv else None


class DemoTest(E2ETestCase):

    def start_demo(self):
        """The script's backends on free ports and the proxy on the rewritten demo config."""
        backends = {}
        for port, argv in script_backends().items():
            args = list(argv)
            i = args.index("--listen")
            del args[i:i + 2]
            color = flag(args, "--color")
            i = args.index("--color")
            del args[i:i + 2]
            b = Backend(color, args)
            self.addCleanup(b.stop)
            backends[port] = b
        text = open(CONFIG).read()

        def port_of(m):
            b = backends.get(int(m.group(1)))
            return f'"127.0.0.1:{b.port if b else 0}"'

        text = re.sub(r'"127\.0\.0\.1:(\d+)"', port_of, text)
        proxy = Proxy(self.tmp, text)
        self.addCleanup(proxy.stop)
        return proxy.start(), backends

    def test_script_starts_every_upstream_of_the_config(self):
        backends = script_backends()
        upstreams = config_upstreams(open(CONFIG).read())
        self.assertIn("yellow", upstreams)
        for name, ports in upstreams.items():
            self.assertTrue(ports, f"upstream {name} has no loopback endpoint")
            for port in ports:
                self.assertIn(port, backends, f"run-demo.sh starts no backend for {name}:{port}")
                self.assertEqual(flag(backends[port], "--color"), name)
        self.assertEqual(flag(backends[upstreams["yellow"][0]], "--error-rate"), "0.5")
        self.assertEqual(sorted(p for ps in upstreams.values() for p in ps), sorted(backends))

    def test_yellow_fails_every_other_request(self):
        _, backends = self.start_demo()
        yellow = backends[config_upstreams(open(CONFIG).read())["yellow"][0]]
        client = DataClient(yellow.port)
        self.addCleanup(client.close)
        statuses = [client.request("GET", "/color").status for _ in range(20)]
        self.assertEqual(statuses, [200, 500] * 10)

    def traffic_until(self, proxy, done, limit=20000, seconds=30):
        """GET /color on one connection until done(status) (asked every 100 requests), at most
        `limit` requests or `seconds`; returns the last status."""
        client = DataClient(proxy.port)
        self.addCleanup(client.close)
        deadline = time.monotonic() + seconds
        status = proxy.status(ROUTE)
        for i in range(limit):
            client.request("GET", "/color")
            if i % 100 == 99:
                status = proxy.status(ROUTE)
                if done(status) or time.monotonic() > deadline:
                    break
        return status

    def test_yellow_aborts_by_itself(self):
        proxy, _ = self.start_demo()
        r = ctl(proxy.admin_url, "set-upstream", ROUTE, "yellow")
        self.assertEqual(r.returncode, 0, r.stderr)
        s = self.traffic_until(proxy, lambda s: s["phase"] == "Degraded")
        self.assertEqual(s["phase"], "Degraded", s)
        self.assertTrue(s["message"].startswith("AnalysisFailed: "), s["message"])
        self.assertEqual(s["actual_weight"], 0)
        self.assertEqual(proxy.events(ROUTE)["events"][-1]["cause"], "analysis")
        out = ctl(proxy.admin_url, "get", ROUTE).stdout
        self.assertRegex(out, r"(?m)^Analysis:\s+✖ Failed \(run \S+\)$")
        self.assertEqual(proxy.colors(20), {"blue": 20})

    def test_green_passes_the_same_analysis(self):
        proxy, _ = self.start_demo()
        proxy.op(ROUTE, "upstream", {"upstream": "green"})

        def errors_metric(s):
            return next(m for m in s["analysis"]["metrics"] if m["name"] == "errors")

        s = self.traffic_until(proxy, lambda s: errors_metric(s)["phase"] == "Successful")
        self.assertEqual(errors_metric(s)["phase"], "Successful", s["analysis"])
        self.assertEqual((s["phase"], s["paused_by"], s["step"]), ("Paused", "step", 1), s)
        self.assertNotEqual(s["analysis"]["phase"], "Failed", s["analysis"])


if __name__ == "__main__":
    import unittest
    unittest.main()
