"""The classic canary flow driven with canaryctl (see docs/control-api.md), and a canary aborted
by the proxy's own analysis as `canaryctl get` and `canaryctl analysis` show it."""

import json
import re
import subprocess
import time
import unittest

from harness import (DEADLINE, DataClient, E2ETestCase, Process, binary, closed_port,
                     concrete_ports, ctl, make_config, route, to_yaml)

NAME = "canary-demo"


def field(out, label):
    """The value of a `Label:   value` line of `canaryctl get`."""
    m = re.search(r"^" + re.escape(label) + r":[ ]+(.*?)\s*$", out, re.M)
    return m.group(1) if m else None


class CanaryctlTest(E2ETestCase):

    def setUp(self):
        super().setUp()
        self.proxy = self.demo_proxy()
        self.url = self.proxy.admin_url

    def ctl(self, *args, ok=True, **kw):
        r = ctl(self.url, *args, **kw)
        if ok and r.returncode != 0:
            self.fail(f"canaryctl {' '.join(args)} exited {r.returncode}\n"
                      f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        return r

    def start_rollout(self):
        r = self.ctl("set-upstream", NAME, "green")
        self.assertIn(NAME, r.stdout)
        s = self.proxy.status()
        self.assertEqual((s["phase"], s["step"], s["weight"]), ("Paused", 1, 20))

    def test_get_human_and_json(self):
        out = self.ctl("get", NAME).stdout
        self.assertEqual(field(out, "Status"), "✔ Healthy")
        self.assertEqual(field(out, "Stable"), "blue")
        self.assertEqual(field(out, "Canary"), "-")
        self.start_rollout()
        out = self.ctl("get", NAME).stdout
        self.assertEqual(field(out, "Name"), NAME)
        self.assertEqual(field(out, "Status"), "॥ Paused")
        self.assertEqual(field(out, "  Step"), "1/6")
        self.assertEqual(field(out, "  SetWeight"), "20")
        self.assertEqual(field(out, "  ActualWeight"), "20")
        self.assertEqual(field(out, "Stable"), "blue")
        self.assertEqual(field(out, "Canary"), "green")
        # The steps, the current one marked.
        self.assertRegex(out, r"(?m)^  ✔ 1  setWeight: 20$")
        self.assertRegex(out, r"(?m)^  ▶ 2  pause: \{\}$")
        self.assertRegex(out, r"(?m)^    4  pause: 2s$")
        r = self.ctl("-o", "json", "get", NAME)
        self.assertEqual(json.loads(r.stdout), self.proxy.status())

    def test_flow_to_healthy(self):
        self.start_rollout()
        r = self.ctl("promote", NAME)
        self.assertIn("promoted", r.stdout)
        s = self.proxy.status()
        self.assertEqual((s["phase"], s["step"], s["weight"]), ("Paused", 3, 50))
        t0 = time.monotonic()
        r = self.ctl("wait", NAME, "--for=healthy", "--timeout", "30s")
        self.assertIn("Healthy", r.stdout)
        self.assertLess(time.monotonic() - t0, 15)
        s = self.proxy.status()
        self.assertEqual((s["phase"], s["stable"], s["canary"]), ("Healthy", "green", None))
        self.assertEqual(self.proxy.colors(20), {"green": 20})
        # Already there: at once.
        t0 = time.monotonic()
        self.ctl("wait", NAME, "--for=healthy")
        self.assertLess(time.monotonic() - t0, 3)
        # Events list the whole history.
        out = self.ctl("events", NAME).stdout
        header = out.splitlines()[0].split()
        self.assertEqual(header, ["TIME", "FROM", "TO", "STEP", "WEIGHT", "CAUSE", "MESSAGE"])
        body = out.splitlines()[1:]
        self.assertEqual(len(body), len(self.proxy.events()["events"]))
        for cause in ("api", "step", "timer"):
            self.assertTrue(any(re.search(r"\s" + cause + r"\s", l) for l in body), out)
        ev = json.loads(self.ctl("-o", "json", "events", NAME).stdout)
        self.assertEqual(ev, self.proxy.events())

    def test_promote_full(self):
        self.start_rollout()
        self.ctl("promote", NAME, "--full")
        s = self.proxy.status()
        self.assertEqual((s["phase"], s["stable"], s["canary"]), ("Healthy", "green", None))

    def test_wait_paused_already_reached(self):
        self.start_rollout()
        t0 = time.monotonic()
        r = self.ctl("wait", NAME, "--for=paused")
        self.assertLess(time.monotonic() - t0, 3)
        self.assertIn("Paused", r.stdout)

    def test_wait_timeout_exits_2(self):
        self.start_rollout()
        t0 = time.monotonic()
        r = self.ctl("wait", NAME, "--for=healthy", "--timeout", "1s", ok=False)
        elapsed = time.monotonic() - t0
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertGreaterEqual(elapsed, 1.0)
        self.assertLess(elapsed, 6)
        self.assertIn("timed out", r.stderr)

    def test_wait_timeout_says_what_it_waited(self):
        # A sub-second part is waited for and reported as given (it used to say "after 1s").
        self.start_rollout()
        t0 = time.monotonic()
        r = self.ctl("wait", NAME, "--for=healthy", "--timeout", "1.5s", ok=False)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertGreaterEqual(time.monotonic() - t0, 1.5)
        self.assertIn("timed out after 1.5s waiting for rollout", r.stderr)

    def test_bad_or_overflowing_timeout_is_a_usage_error(self):
        # Overflowing values used to make the deadline wrap into the past: an instant exit 2,
        # "timed out". Values the config grammar refuses (repeated units, a bare fraction) used
        # to be accepted. All are usage errors now, exit 64, before any request; the rollout is
        # paused, so a wait that started would not end by itself.
        self.start_rollout()
        for value, message in [
                ("2562047h", "--timeout 2562047h is too long (at most 8760h)"),
                ("9000000000000000ms", "--timeout 9000000000000000ms is too long (at most 8760h)"),
                ("99999999999999999999ms", "bad duration '99999999999999999999ms' for --timeout"),
                ("1h1h", "bad duration '1h1h' for --timeout"),
                ("1.5", "bad duration '1.5' for --timeout"),
                ("-1s", "bad duration '-1s' for --timeout")]:
            with self.subTest(value=value):
                r = self.ctl("wait", NAME, "--for=healthy", "--timeout", value, ok=False,
                             timeout=10)
                self.assertEqual(r.returncode, 64, r.stderr)
                self.assertIn(message, r.stderr)
                self.assertNotIn("timed out", r.stderr)
                self.assertEqual(r.stdout, "")

    def test_wait_healthy_then_abort_exits_1(self):
        self.start_rollout()
        p = Process([binary("canaryctl"), "--server", self.url, "wait", NAME, "--for=healthy",
                     "--timeout", "30s"])
        self.addCleanup(p.kill)
        # It keeps waiting while the rollout is paused.
        with self.assertRaises(subprocess.TimeoutExpired):
            p.proc.wait(0.5)
        self.ctl("abort", NAME)
        rc = p.wait(10)
        self.assertEqual(rc, 1, p.output())
        self.assertIn("Degraded", p.stderr.text())

    def test_abort_retry_pause_resume_set_weight(self):
        self.start_rollout()
        self.ctl("set-weight", NAME, "40")
        self.assertEqual(self.proxy.status()["weight"], 40)
        self.assertEqual(self.proxy.colors(100), {"blue": 60, "green": 40})
        self.ctl("pause", NAME)
        self.assertEqual(self.proxy.status()["paused_by"], "user")
        self.assertEqual(field(self.ctl("get", NAME).stdout, "Paused by"), "user")
        self.ctl("resume", NAME)
        self.assertEqual(self.proxy.status()["paused_by"], "step")
        r = self.ctl("abort", NAME)
        self.assertIn("aborted", r.stdout)
        out = self.ctl("get", NAME).stdout
        self.assertEqual(field(out, "Status"), "✖ Degraded")
        self.assertTrue(field(out, "Message").startswith("RolloutAborted"), out)
        self.assertEqual(self.proxy.colors(20, {"X-Canary": "always"}), {"blue": 20})
        # Degraded: wait --for=healthy fails at once with 1, --for=degraded succeeds.
        r = self.ctl("wait", NAME, "--for=healthy", ok=False)
        self.assertEqual(r.returncode, 1)
        self.ctl("wait", NAME, "--for=degraded")
        self.ctl("retry", NAME)
        s = self.proxy.status()
        self.assertEqual((s["phase"], s["step"], s["weight"]), ("Paused", 1, 20))

    def test_list(self):
        out = self.ctl("list").stdout.splitlines()
        self.assertEqual(out[0].split(), ["NAME", "STATUS", "STEP", "SETWEIGHT", "ACTUALWEIGHT",
                                          "STABLE", "CANARY"])
        self.assertEqual(len(out), 2)
        self.assertTrue(out[1].startswith(NAME), out)
        self.assertIn("Healthy", out[1])
        listing = json.loads(self.ctl("-o", "json", "list").stdout)
        self.assertEqual(listing, self.proxy.admin("GET", "/api/v1/rollouts").json())

    def test_reload(self):
        import copy
        cfg = copy.deepcopy(self.proxy.config)
        cfg["routes"][0]["upstream"] = "green"
        self.proxy.write_config(cfg)
        r = self.ctl("reload")
        self.assertIn("reloaded", r.stdout)
        s = self.proxy.status()
        self.assertEqual((s["phase"], s["canary"]), ("Paused", "green"))
        self.proxy.write_config(to_yaml(cfg) + "\nbogus_key: 1\n")
        r = self.ctl("reload", ok=False)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, re.escape(self.proxy.config_path) + r":\d+:1: bogus_key")

    def test_errors(self):
        api_error = self.proxy.admin("GET", "/api/v1/rollouts/nope").json()["error"]
        r = self.ctl("get", "nope", ok=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn(api_error, r.stderr)
        r = self.ctl("promote", "nope", ok=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn(api_error, r.stderr)
        # 409: promote while Healthy.
        r = self.ctl("promote", NAME, ok=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("Healthy", r.stderr)
        r = self.ctl("set-upstream", NAME, "purple", ok=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("purple", r.stderr)
        # Usage errors exit 64 (EX_USAGE): 2 is `wait`'s "timed out".
        self.assertEqual(self.ctl("frobnicate", ok=False).returncode, 64)
        self.assertEqual(self.ctl("get", ok=False).returncode, 64)
        self.assertEqual(self.ctl("analysis", ok=False).returncode, 64)
        self.assertEqual(self.ctl("analysis", NAME, "--watch", ok=False).returncode, 64)
        self.assertEqual(self.ctl("wait", NAME, "--for=sideways", ok=False).returncode, 64)
        # An unreachable server.
        r = ctl(f"http://127.0.0.1:{closed_port()}", "list")
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stderr.strip())

    def test_get_watch_redraws_on_change(self):
        self.start_rollout()
        p = Process([binary("canaryctl"), "--server", self.url, "get", NAME, "--watch"])
        self.addCleanup(p.kill)
        p.stdout.wait_for(r"^  Step:\s+1/6$")
        mark = p.stdout.count()
        self.proxy.op(NAME, "promote")
        p.stdout.wait_for(r"^  Step:\s+3/6$", start=mark)
        p.stdout.wait_for(r"^  SetWeight:\s+50$", start=mark)
        self.assertTrue(p.alive())
        p.kill()


class CanaryctlTokenTest(E2ETestCase):

    def test_token_file(self):
        token = self.write("token", "t0ken\n")
        proxy = self.demo_proxy(token_file=token)
        r = ctl(proxy.admin_url, "set-upstream", NAME, "green")
        self.assertEqual(r.returncode, 1)
        self.assertIn("token", r.stderr.lower())
        self.assertEqual(proxy.status()["canary"], None)
        r = ctl(proxy.admin_url, "get", NAME)  # reads need no token
        self.assertEqual(r.returncode, 0, r.stderr)
        r = ctl(proxy.admin_url, "set-upstream", NAME, "green", token_file=token)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(proxy.status()["canary"], "green")
        wrong = self.write("wrong", "nope\n")
        r = ctl(proxy.admin_url, "promote", NAME, token_file=wrong)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(proxy.status()["step"], 1)


# Background analysis every second; the canary (--error-rate 0.5) fails both metrics quickly.
ANALYSIS = {
    "background": True,
    "interval": "1s",
    "metrics": [
        {"name": "errors", "builtin": "error_rate_vs_stable", "confidence": 0.99,
         "min_requests": 20},
        {"name": "success", "builtin": "success_rate", "min": 0.9, "min_requests": 5},
    ],
}


class CanaryctlAnalysisTest(E2ETestCase):
    """Skipped (saying so) by a canary-proxy whose loader does not know `analysis` yet."""

    def setUp(self):
        super().setUp()
        blue = self.start_backend("blue")
        bad = self.start_backend("green", ["--error-rate", "0.5"])
        r = route(steps=[{"setWeight": 50}, {"pause": {}}])
        r["analysis"] = ANALYSIS
        cfg = make_config({"blue": blue.endpoint, "green": bad.endpoint}, [r])
        check = self.write("check.yaml", to_yaml(concrete_ports(cfg)) + "\n")
        p = subprocess.run([binary("canary-proxy"), "--config", check, "--check"],
                           capture_output=True, text=True, timeout=DEADLINE)
        if p.returncode != 0 and 'unknown key "analysis"' in p.stdout + p.stderr:
            self.skipTest("this canary-proxy does not load route analysis: " +
                          (p.stdout + p.stderr).strip())
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.proxy = self.start_proxy(cfg)
        self.url = self.proxy.admin_url

    def test_abort_by_analysis_in_get_and_analysis(self):
        out = ctl(self.url, "get", NAME).stdout
        self.assertRegex(out, r"(?m)^Analysis:")
        r = ctl(self.url, "set-upstream", NAME, "green")
        self.assertEqual(r.returncode, 0, r.stderr)
        # Traffic until the proxy aborts by itself (bounded in count and time).
        client = DataClient(self.proxy.port)
        self.addCleanup(client.close)
        deadline = time.monotonic() + 30
        for i in range(3000):
            client.request("GET", "/color")
            if i % 50 == 49 and self.proxy.status()["phase"] == "Degraded":
                break
            if time.monotonic() > deadline:
                break
        r = ctl(self.url, "wait", NAME, "--for=degraded", "--timeout", "10s")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        status = self.proxy.status()
        self.assertTrue(status["message"].startswith("AnalysisFailed"), status["message"])

        out = ctl(self.url, "get", NAME).stdout
        self.assertEqual(field(out, "Status"), "✖ Degraded")
        self.assertRegex(out, r"(?m)^Analysis:\s+\S+ \w+ \(run \S+\)$")
        self.assertRegex(out, r"(?m)^  METRIC\s+KIND\s+PHASE\s+SUCCESSFUL\s+FAILED\s+"
                              r"INCONCLUSIVE\s+ERRORS\s+LAST$")
        failed = [m["name"] for m in status["analysis"]["metrics"] if m["phase"] == "Failed"]
        self.assertTrue(failed, status["analysis"])
        for name in failed:
            # The last value against the bound, in percent for these two rate metrics.
            self.assertRegex(out, r"(?m)^  %s\s+\w+\s+✖ Failed\s+\d+\s+[1-9]\d*\s+\d+\s+\d+"
                                  r"\s+\d+\.\d %% \S" % re.escape(name))

        out = ctl(self.url, "analysis", NAME).stdout
        lines = out.splitlines()
        self.assertRegex(lines[0], r"^TIME\s+METRIC\s+PHASE\s+VALUE\s+STABLE\s+CANARY-REQ\s+"
                                   r"STABLE-REQ\s+MESSAGE$")
        self.assertTrue(any(re.search(r"\s✖ Failed\s+\d+\.\d %", l) for l in lines[1:]), out)
        listing = json.loads(ctl(self.url, "-o", "json", "analysis", NAME).stdout)
        api = self.proxy.admin("GET", f"/api/v1/rollouts/{NAME}/analysis").json()
        self.assertEqual(listing, api)
        self.assertEqual(len(lines) - 1, len(listing["measurements"]))


if __name__ == "__main__":
    unittest.main()
