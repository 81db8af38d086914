"""`canary-proxy --check`, `--version`, and refusing to start (see docs/config-reference.md and
docs/rollouts.md#persistence)."""

import json
import os
import re
import subprocess
import unittest

from harness import (DEMO_CONFIG, E2ETestCase, binary, closed_port, concrete_ports, make_config,
                     route, to_yaml)


def run_proxy(*args, timeout=10):
    return subprocess.run([binary("canary-proxy"), *args], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


# Line numbers matter: the test checks each error's FILE:LINE:COL.
BROKEN = """\
listen: "127.0.0.1:0"
workers: 1
bogus_key: 1
upstreams:
  blue:
    endpoints: ["127.0.0.1:9001"]
  green:
    endpoints: []
routes:
  - name: web
    path_prefix: "/"
    upstream: purple
    canary:
      by_header_pattern: "([a-"
      sticky: "session"
    steps:
      - setWeight: 150
      - pause: {duration: "abc"}
"""


class ConfigCheckTest(E2ETestCase):

    def test_check_ok_on_the_demo_config(self):
        r = run_proxy("--config", DEMO_CONFIG, "--check")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("ok", r.stdout)
        self.assertEqual(r.stderr.strip(), "")

    def test_check_lists_every_error_with_position(self):
        path = self.write("broken.yaml", BROKEN)
        r = run_proxy("--config", path, "--check")
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 1, out)
        lines = [l for l in out.splitlines() if l.startswith(path + ":")]
        # Every error: FILE:LINE:COL: key.path: message (1-based line and column).
        rx = re.compile(re.escape(path) + r":(\d+):(\d+): (\S+): (.+)$")
        parsed = []
        for l in lines:
            m = rx.match(l)
            self.assertIsNotNone(m, f"error line not in FILE:LINE:COL: key.path: message form: {l!r}")
            parsed.append((int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)))
        by_line = {p[0]: p for p in parsed}
        # (line, column, key path, words the message must contain)
        expected = [
            (3, 1, "bogus_key", "unknown"),
            (8, 16, "upstreams.green.endpoints", "endpoint"),
            (12, 15, "routes[0].upstream", "purple"),
            (14, 26, "routes[0].canary.by_header_pattern", "RE2"),
            (15, 15, "routes[0].canary.sticky", "session"),
            (17, 20, "routes[0].steps[0].setWeight", "150"),
            (18, 27, "routes[0].steps[1].pause.duration", "abc"),
        ]
        for line, col, key, word in expected:
            self.assertIn(line, by_line, f"no error reported on line {line} ({key}); got:\n{out}")
            got = by_line[line]
            self.assertEqual(got[1], col, f"column of the error on line {line}: {got}")
            self.assertEqual(got[2], key, got)
            self.assertIn(word, got[3], got)
        self.assertGreaterEqual(len(parsed), len(expected), out)

    def test_broken_config_refuses_to_start(self):
        path = self.write("broken.yaml", BROKEN)
        r = run_proxy("--config", path, timeout=10)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(path + ":3:1:", r.stderr)

    def test_listen_port_0_is_accepted(self):
        # Port 0 = any free port (the tests, and side-by-side instances, rely on it); the
        # chosen ports are logged ("proxy listening on 127.0.0.1:PORT").
        cfg = make_config({"blue": "127.0.0.1:9001"}, [route(steps=[])])
        path = self.write("port0.yaml", to_yaml(cfg) + "\n")
        r = run_proxy("--config", path, "--check")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_version(self):
        r = run_proxy("--version")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout.strip(), r"^canary-proxy \d+\.\d+\.\d+")

    def test_missing_config_file(self):
        missing = self.path("nope.yaml")
        r = run_proxy("--config", missing, "--check")
        self.assertEqual(r.returncode, 1)
        self.assertIn(missing, r.stderr)

    def test_dot_segment_route_names_are_refused(self):
        # The dashboard cannot drive a route named "." or "..": the browser collapses the dot
        # segment ("abort" on route ".." would call /api/v1/abort).
        text = ("upstreams:\n"
                "  blue: {endpoints: [\"127.0.0.1:9001\"]}\n"
                "routes:\n"
                "  - name: \"..\"\n"
                "    upstream: blue\n"
                "  - {name: ., upstream: blue, path_prefix: /dot}\n")
        path = self.write("dots.yaml", text)
        r = run_proxy("--config", path, "--check")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(path + ':4:11: routes[0].name: bad route name ".." (', r.stderr)
        self.assertIn(path + ':6:12: routes[1].name: bad route name "." (', r.stderr)
        self.assertIn("URL path segment", r.stderr)

    def _refused_file(self, path, words):
        # A hang guard, not a timing figure: without the checks /dev/zero is read until memory
        # runs out and a FIFO's open() waits for a writer forever.
        r = run_proxy("--config", path, "--check", timeout=10)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(path + ": cannot read file: ", r.stderr)
        self.assertIn(words, r.stderr)

    def test_check_refuses_dev_zero(self):
        self._refused_file("/dev/zero", "a character device is not a config file")

    def test_check_refuses_a_fifo(self):
        fifo = self.path("config.fifo")
        os.mkfifo(fifo)
        self._refused_file(fifo, "a FIFO is not a config file")

    def test_check_refuses_a_file_over_64_mib(self):
        big = self.path("big.yaml")
        with open(big, "w") as f:
            f.truncate(64 * 1024 * 1024 + 1)  # sparse: no disk used
        self._refused_file(big, "more than a config file may have (64 MiB)")

    def _admin_everywhere_config(self, token_file=None):
        cfg = make_config({"blue": "127.0.0.1:9001", "green": "127.0.0.1:9002"}, [route()],
                          token_file=token_file)
        cfg = concrete_ports(cfg)
        # Never bound: --check only, and a start is refused before it listens.
        cfg["admin"]["listen"] = f"0.0.0.0:{closed_port()}"
        return self.write("open-admin.yaml", to_yaml(cfg) + "\n")

    def test_admin_on_all_interfaces_without_token_is_refused(self):
        path = self._admin_everywhere_config()
        r = run_proxy("--config", path, "--check")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertRegex(r.stderr, re.escape(path) + r":\d+:\d+: admin\.listen: .*token_file")
        # Starting for real refuses the same way (and never opens the listener).
        r = run_proxy("--config", path, timeout=10)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("token_file", r.stderr)
        self.assertNotIn("admin listening", r.stdout + r.stderr)

    def test_admin_on_all_interfaces_with_token_passes_check(self):
        token = self.write("token", "s3cret\n")
        path = self._admin_everywhere_config(token_file=token)
        r = run_proxy("--config", path, "--check")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


class StateFileTest(E2ETestCase):
    """A state file that cannot be used: refuse to start, naming the file (see docs/rollouts.md)."""

    def setUp(self):
        super().setUp()
        self.blue_green()
        self.cfg = make_config({"blue": self.blue.endpoint, "green": self.green.endpoint},
                               [route()])

    def _refuses(self, content):
        state = self.write("state.json", content)
        proxy = self.new_proxy(self.cfg)
        rc, out = proxy.start_expect_failure()
        self.assertNotEqual(rc, 0, out)
        self.assertIn(state, out, "the error must name the state file")
        self.assertNotIn("proxy listening", out)
        # Never silently replaced.
        with open(state) as f:
            self.assertEqual(f.read(), content, "the unusable state file was modified")
        return proxy, out

    def test_invalid_json(self):
        self._refuses("{not json")

    def test_empty_file(self):
        _, out = self._refuses("")
        self.assertIn("empty", out)

    def test_unknown_format_version(self):
        _, out = self._refuses('{"version": 99, "routes": {}}')
        self.assertIn("99", out)

    def test_state_naming_an_unknown_upstream(self):
        proxy = self.start_proxy(self.cfg)
        proxy.op("canary-demo", "upstream", {"upstream": "green"})
        self.assertEqual(proxy.sigterm(), 0)
        with open(proxy.state_path) as f:
            text = f.read()
        state = json.loads(text)
        self.assertIn("canary-demo", json.dumps(state))
        self.assertIn('"green"', text)
        self._refuses(text.replace('"green"', '"purple"'))

    def test_moving_the_file_away_means_a_first_start(self):
        proxy, _ = self._refuses("{not json")
        os.rename(proxy.state_path, proxy.state_path + ".bad")
        proxy.start()
        s = proxy.status()
        self.assertEqual((s["phase"], s["stable"], s["canary"]), ("Healthy", "blue", None))
        with open(proxy.state_path) as f:
            json.load(f)  # a fresh, valid state file was written


if __name__ == "__main__":
    unittest.main()
