"""Configs with thousands of routes start, serve and reload; `--check` refuses what a start
refuses (state file, admin token file, access log path), naming the file."""

import os
import re
import subprocess
import unittest

from harness import E2ETestCase, binary, closed_port, make_config, route


def run_check(path, timeout=30):
    return subprocess.run([binary("canary-proxy"), "--config", path, "--check"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


def access_log_to(path):
    return {"access_log": {"enabled": True, "path": path}}


def host_routes(n):
    """n routes, one host each (r-<i>.example), all to upstream blue, no rollout steps."""
    return [route(name=f"r-{i}", hosts=[f"r-{i}.example"], steps=[]) for i in range(n)]


def requests_of(metrics_text, route_name):
    """canary_proxy_requests_total summed over the samples of one route."""
    total = 0.0
    rx = re.compile(r'^canary_proxy_requests_total\{(.*)\} (\S+)$', re.M)
    for labels, value in rx.findall(metrics_text):
        if f'route="{route_name}"' in labels:
            total += float(value)
    return total


class ManyRoutesTest(E2ETestCase):
    """More routes, upstreams and series than any fixed metrics table held (1,024 routes, 4,096
    series): start, serve the last route, count it, reload to more."""

    def test_2000_routes_start_serve_and_reload_to_2500(self):
        blue = self.start_backend("blue")
        cfg = make_config({"blue": blue.endpoint}, host_routes(2000))
        proxy = self.new_proxy(cfg)
        r = run_check(proxy.config_path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        proxy.start()

        for name in ("r-0", "r-1999"):
            reply = proxy.get("/color", headers={"Host": f"{name}.example"})
            self.assertStatus(reply, 200)
            self.assertEqual(reply.json(), "blue", reply)
        self.assertStatus(proxy.get("/color", headers={"Host": "r-2000.example"}), 404)
        metrics = proxy.admin("GET", "/metrics")
        self.assertStatus(metrics, 200)
        self.assertEqual(requests_of(metrics.text, "r-1999"), 1, "the last route's request")

        proxy.write_config(make_config({"blue": blue.endpoint}, host_routes(2500)))
        r = run_check(proxy.config_path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        reply = proxy.admin("POST", "/api/v1/config/reload")
        self.assertStatus(reply, 200)
        for name in ("r-1999", "r-2000", "r-2499"):
            reply = proxy.get("/color", headers={"Host": f"{name}.example"})
            self.assertStatus(reply, 200)
            self.assertEqual(reply.json(), "blue", reply)
        self.assertEqual(proxy.status("r-2499")["stable"], "blue")
        metrics = proxy.admin("GET", "/metrics")
        self.assertStatus(metrics, 200)
        self.assertEqual(requests_of(metrics.text, "r-1999"), 2)
        self.assertEqual(requests_of(metrics.text, "r-2499"), 1)

    def test_reload_from_10_to_2500_routes(self):
        # The reload path on its own: the config in force is small, the new one is not.
        blue = self.start_backend("blue")
        proxy = self.start_proxy(make_config({"blue": blue.endpoint}, host_routes(10)))
        proxy.write_config(make_config({"blue": blue.endpoint}, host_routes(2500)))
        self.assertStatus(proxy.admin("POST", "/api/v1/config/reload"), 200)
        reply = proxy.get("/color", headers={"Host": "r-2499.example"})
        self.assertStatus(reply, 200)
        self.assertStatus(proxy.admin("GET", "/metrics"), 200)
        self.assertEqual(proxy.status("r-2499")["phase"], proxy.status("r-0")["phase"])


class CheckRefusesWhatStartRefusesTest(E2ETestCase):
    """Each case: `--check` exits 1 naming the file, and a start refuses the same way."""

    def config(self, **kw):
        eps = {"blue": f"127.0.0.1:{closed_port()}", "green": f"127.0.0.1:{closed_port()}"}
        return make_config(eps, [route(steps=[])], **kw)

    def assert_refused(self, proxy, named):
        r = run_check(proxy.config_path)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(named, r.stderr, "--check must name the file")
        self.assertNotIn(": ok", r.stdout)
        rc, out = proxy.start_expect_failure()
        self.assertEqual(rc, 1, out)
        self.assertIn(named, out, "the start must name the file")
        self.assertNotIn("proxy listening", out)
        return r.stderr

    def test_state_naming_an_unknown_upstream(self):
        log_path = self.path("access.log")
        proxy = self.new_proxy(self.config(extra=access_log_to(log_path)))
        r = run_check(proxy.config_path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout.strip(), f"{proxy.config_path}: ok")
        # Read-only: a start would write both.
        self.assertFalse(os.path.exists(proxy.state_path), "--check must not write the state")
        self.assertFalse(os.path.exists(log_path), "--check must not create the access log")
        proxy.start()
        proxy.op("canary-demo", "upstream", {"upstream": "green"})
        self.assertEqual(proxy.sigterm(), 0)
        with open(proxy.state_path) as f:
            text = f.read()
        self.assertIn('"green"', text)
        with open(proxy.state_path, "w") as f:
            f.write(text.replace('"green"', '"purple"'))
        err = self.assert_refused(proxy, proxy.state_path)
        self.assertIn("purple", err)
        with open(proxy.state_path) as f:
            self.assertEqual(f.read(), text.replace('"green"', '"purple"'), "state file modified")

    def test_unreadable_state_file(self):
        proxy = self.new_proxy(self.config())
        os.mkdir(proxy.state_path)  # open(2) works on a directory; read(2) fails, also as root
        self.assert_refused(proxy, proxy.state_path)

    def test_missing_admin_token_file(self):
        token = self.path("missing-token")
        proxy = self.new_proxy(self.config(token_file=token))
        self.assert_refused(proxy, token)

    def test_empty_admin_token_file(self):
        token = self.write("token", "\n")
        proxy = self.new_proxy(self.config(token_file=token))
        err = self.assert_refused(proxy, token)
        self.assertIn("empty", err)

    def test_access_log_in_a_missing_directory(self):
        log_path = self.path("no-such-dir", "access.log")
        proxy = self.new_proxy(self.config(extra=access_log_to(log_path)))
        self.assert_refused(proxy, log_path)
        self.assertFalse(os.path.exists(os.path.dirname(log_path)))


if __name__ == "__main__":
    unittest.main()
