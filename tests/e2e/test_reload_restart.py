"""Config reloads (API and SIGHUP), restarts, kill -9 and SIGTERM (see docs/rollouts.md#persistence
and docs/architecture.md#data-plane-rules)."""

import copy
import re
import socket
import threading
import time
import unittest

from harness import (E2ETestCase, DataClient, make_config, parse_response, poll, route,
                     to_yaml)

NAME = "canary-demo"

# A long first pause, so a status read after a restart can tell "kept" from "reset".
STEPS_LONG_PAUSE = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50},
                    {"pause": {"duration": "6s"}}, {"setWeight": 70}, {"pause": {}}]
STEPS_SHORT_PAUSE = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50},
                     {"pause": {"duration": "1s"}}, {"setWeight": 70}, {"pause": {}}]


def key(s):
    return (s["phase"], s["step"], s["weight"], s["paused_by"], s["stable"], s["canary"])


class ReloadRestartTest(E2ETestCase):

    def setUp(self):
        super().setUp()
        self.blue_green()

    def proxy_with(self, steps=None, upstream="blue"):
        cfg = make_config({"blue": self.blue.endpoint, "green": self.green.endpoint},
                          [route(steps=steps, upstream=upstream)])
        return self.start_proxy(cfg)

    def with_upstream(self, proxy, upstream):
        cfg = copy.deepcopy(proxy.config)
        cfg["routes"][0]["upstream"] = upstream
        return cfg

    def reload_api(self, proxy):
        r = proxy.admin("POST", "/api/v1/config/reload")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["result"], "ok")

    # --- reload

    def test_reload_via_api_starts_the_rollout(self):
        proxy = self.proxy_with()
        proxy.write_config(self.with_upstream(proxy, "green"))
        self.reload_api(proxy)
        s = proxy.status()
        self.assertEqual(key(s), ("Paused", 1, 20, "step", "blue", "green"))
        self.assertEqual(proxy.colors(100), {"blue": 80, "green": 20})
        events = proxy.events()["events"]
        self.assertEqual((events[0]["from"], events[0]["cause"]), ("Healthy", "config"), events)
        self.assertIn("green", events[0]["message"])

    def test_reload_via_sighup_starts_the_rollout(self):
        proxy = self.proxy_with()
        proxy.write_config(self.with_upstream(proxy, "green"))
        proxy.sighup()
        s = proxy.wait_status(lambda s: s["phase"] == "Paused", what="the SIGHUP reload")
        self.assertEqual(key(s), ("Paused", 1, 20, "step", "blue", "green"))
        self.assertEqual(proxy.events()["events"][0]["cause"], "config")
        self.assertTrue(proxy.process.alive())

    def test_reload_with_unchanged_file_changes_nothing(self):
        proxy = self.proxy_with()
        proxy.op(NAME, "upstream", {"upstream": "green"})
        before = proxy.status()
        self.reload_api(proxy)
        self.assertEqual(key(proxy.status()), key(before))

    def test_broken_reload_keeps_the_old_config(self):
        proxy = self.proxy_with()
        base = proxy.config
        good = to_yaml(base) + "\n"
        lines = good.count("\n")
        proxy.write_config(good + "bogus_key: 1\nworkers: -3\n")
        r = proxy.admin("POST", "/api/v1/config/reload")
        body = self.assertApiError(r, 422)
        self.assertGreaterEqual(len(body["errors"]), 2, body)
        for e in body["errors"]:
            self.assertRegex(e, "^" + re.escape(proxy.config_path) + r":\d+:\d+: ")
        self.assertTrue(any(e.startswith(f"{proxy.config_path}:{lines + 1}:1: ")
                            for e in body["errors"]), body["errors"])
        # Still serving with the old config, no rollout started.
        self.assertEqual(proxy.colors(20), {"blue": 20})
        self.assertEqual(proxy.status()["phase"], "Healthy")

        # The same by SIGHUP: logged, nothing changes, the process keeps serving.
        mark = proxy.process.log_mark()
        proxy.sighup()
        proxy.process.wait_for_log(re.escape(proxy.config_path) + r":\d+:\d+: ", mark=mark)
        self.assertTrue(proxy.process.alive())
        self.assertEqual(proxy.colors(20), {"blue": 20})
        self.assertEqual(proxy.admin("GET", "/readyz").status, 200)

        # A broken file that changes the upstream does not start anything either.
        proxy.config = base
        broken = to_yaml(self.with_upstream(proxy, "green")) + "\nbogus_key: 1\n"
        proxy.write_config(broken)
        self.assertApiError(proxy.admin("POST", "/api/v1/config/reload"), 422)
        self.assertEqual(proxy.status()["canary"], None)

    def test_reload_cannot_remove_an_upstream_in_use(self):
        proxy = self.proxy_with()
        proxy.op(NAME, "upstream", {"upstream": "green"})
        cfg = copy.deepcopy(proxy.config)
        del cfg["upstreams"]["green"]
        proxy.write_config(cfg)
        body = self.assertApiError(proxy.admin("POST", "/api/v1/config/reload"), 422)
        self.assertTrue(any("green" in e for e in body["errors"]), body)
        self.assertEqual(key(proxy.status()), ("Paused", 1, 20, "step", "blue", "green"))
        self.assertEqual(proxy.colors(100), {"blue": 80, "green": 20})

    def test_file_change_wins_over_api(self):
        proxy = self.proxy_with()
        proxy.op(NAME, "upstream", {"upstream": "green"})
        # The file still says blue: a restart with it changes nothing.
        self.assertEqual(proxy.sigterm(), 0)
        proxy.start()
        self.assertEqual(key(proxy.status()), ("Paused", 1, 20, "step", "blue", "green"))
        # The file now names the current canary: nothing changes.
        proxy.write_config(self.with_upstream(proxy, "green"))
        self.reload_api(proxy)
        self.assertEqual(key(proxy.status()), ("Paused", 1, 20, "step", "blue", "green"))
        # The file goes back to the stable version: the rollout is cancelled.
        proxy.write_config(self.with_upstream(proxy, "blue"))
        self.reload_api(proxy)
        s = proxy.status()
        self.assertEqual((s["phase"], s["stable"], s["canary"], s["weight"]),
                         ("Healthy", "blue", None, 0))
        self.assertEqual(proxy.events()["events"][-1]["cause"], "config")

    def test_reload_changing_steps_keeps_the_position(self):
        proxy = self.proxy_with()
        proxy.op(NAME, "upstream", {"upstream": "green"})
        cfg = copy.deepcopy(proxy.config)
        cfg["routes"][0]["steps"] = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 90},
                                     {"pause": {}}]
        proxy.write_config(cfg)
        self.reload_api(proxy)
        s = proxy.status()
        self.assertEqual(key(s), ("Paused", 1, 20, "step", "blue", "green"))
        self.assertEqual(len(s["steps"]), 4)
        s = proxy.op(NAME, "promote").json()
        self.assertEqual((s["phase"], s["step"], s["weight"]), ("Paused", 3, 90))

    def test_reloads_and_rollout_changes_fail_no_request(self):
        proxy = self.proxy_with()
        green_cfg = self.with_upstream(proxy, "green")
        stop = threading.Event()
        results = {"ok": 0, "bad": []}

        def load():
            client = DataClient(proxy.port)
            sock = None
            try:
                deadline = time.monotonic() + 20
                while not stop.is_set() and time.monotonic() < deadline:
                    r = client.request("GET", "/color")
                    if sock is None:
                        sock = client.conn.sock
                    if r.status != 200 or client.conn.sock is not sock:
                        results["bad"].append((r.status, r.text))
                    else:
                        results["ok"] += 1
            except Exception as e:  # reported below
                results["bad"].append(repr(e))
            finally:
                client.close()

        t = threading.Thread(target=load, daemon=True)
        t.start()
        self.addCleanup(t.join, 25)
        self.addCleanup(stop.set)
        stable = "blue"
        for i in range(5):
            other = "green" if stable == "blue" else "blue"
            proxy.op(NAME, "upstream", {"upstream": other})
            proxy.op(NAME, "weight", {"weight": 10 * (i + 1)})
            proxy.sighup()
            self.reload_api(proxy)
            proxy.op(NAME, "abort")
            proxy.op(NAME, "retry")
            proxy.op(NAME, "promote")
            s = proxy.op(NAME, "promote", {"full": True}).json()
            self.assertEqual(s["stable"], other)
            stable = other
        # A file change too (it starts a rollout to green or changes nothing).
        proxy.write_config(green_cfg)
        self.reload_api(proxy)
        stop.set()
        t.join(25)
        self.assertEqual(results["bad"], [])
        self.assertGreater(results["ok"], 10)

    def test_sigterm_drains_in_flight_requests(self):
        slow = self.start_backend("slow", ["--latency", "1500ms"])
        cfg = make_config({"blue": slow.endpoint, "green": self.green.endpoint}, [route()])
        proxy = self.start_proxy(cfg)
        s = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
        self.addCleanup(s.close)
        s.sendall(b"GET /color HTTP/1.1\r\nHost: drain.test\r\n\r\n")

        def active():
            m = re.search(r"(?m)^canary_proxy_connections_active(?:\{\})? (\S+)$",
                          proxy.admin("GET", "/metrics").text)
            return m and float(m.group(1)) >= 1
        poll(active, what="the slow request to be accepted")
        proxy.process.signal(15)
        # Draining: /readyz says 503 while the in-flight request finishes.
        poll(lambda: proxy.admin("GET", "/readyz").status == 503, what="/readyz 503")
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
        r = parse_response(data)
        self.assertEqual((r.status, r.json()), (200, "slow"))
        self.assertEqual(proxy.process.wait(10), 0)
        # In-flight requests finish "with Connection: close" (see
        # docs/architecture.md#data-plane-rules).
        self.assertEqual((r.header("Connection") or "").lower(), "close", r.headers)

    # --- restarts

    def test_restart_with_unchanged_file_changes_nothing(self):
        proxy = self.proxy_with()
        before = proxy.status()
        self.assertEqual(proxy.sigterm(), 0)
        proxy.start()
        self.assertEqual(proxy.status(), before)
        self.assertEqual(proxy.colors(10), {"blue": 10})

    def test_kill9_mid_rollout_keeps_the_rollout(self):
        proxy = self.proxy_with()
        proxy.write_config(self.with_upstream(proxy, "green"))
        self.reload_api(proxy)
        before = proxy.status()
        events = proxy.events()
        self.assertEqual(key(before), ("Paused", 1, 20, "step", "blue", "green"))
        proxy.colors(37)  # move the round-robin somewhere
        proxy.restart(hard=True)
        self.assertEqual(proxy.status(), before)
        self.assertEqual(proxy.events(), events)
        self.assertEqual(proxy.colors(100), {"blue": 80, "green": 20})
        # The rollout goes on from where it was.
        s = proxy.op(NAME, "promote").json()
        self.assertEqual((s["phase"], s["step"], s["weight"]), ("Paused", 3, 50))

    def test_kill9_during_a_timed_pause_keeps_its_deadline(self):
        proxy = self.proxy_with(steps=STEPS_LONG_PAUSE)
        proxy.op(NAME, "upstream", {"upstream": "green"})
        s = proxy.op(NAME, "promote").json()
        t1 = time.monotonic()
        r1 = s["pause_remaining_s"]
        self.assertEqual((s["phase"], s["step"], s["paused_by"]), ("Paused", 3, "step"))
        self.assertTrue(5.0 < r1 <= 6.0, s)
        proxy.kill9()
        time.sleep(1.5)  # time spent down counts (this wait is the point of the test)
        proxy.start()
        s = proxy.status()
        t2 = time.monotonic()
        r2 = s["pause_remaining_s"]
        self.assertEqual((s["phase"], s["step"], s["weight"], s["paused_by"]),
                         ("Paused", 3, 50, "step"), s)
        expected = r1 - (t2 - t1)
        self.assertTrue(expected - 0.5 <= r2 <= expected + 0.3,
                        f"pause_remaining_s after the restart is {r2}, expected about "
                        f"{expected:.2f} (it was {r1} {t2 - t1:.2f}s earlier)")
        # And the pause ends on time.
        s = proxy.wait_status(lambda s: s["step"] == 5, timeout=r2 + 3,
                              what="the pause to end")
        self.assertEqual((s["phase"], s["weight"]), ("Paused", 70))
        self.assertIn("timer", [e["cause"] for e in proxy.events()["events"][-3:]])

    def test_deadline_that_passed_while_down_continues_at_start(self):
        proxy = self.proxy_with(steps=STEPS_SHORT_PAUSE)
        proxy.op(NAME, "upstream", {"upstream": "green"})
        s = proxy.op(NAME, "promote").json()
        self.assertEqual((s["phase"], s["step"]), ("Paused", 3))
        proxy.kill9()
        time.sleep(1.2)  # longer than the 1 s pause: its deadline passes while the proxy is down
        proxy.start()
        s = proxy.status()
        self.assertEqual((s["phase"], s["step"], s["weight"], s["paused_by"]),
                         ("Paused", 5, 70, "step"), s)
        causes = [e["cause"] for e in proxy.events()["events"]]
        self.assertIn("timer", causes)

    def test_completed_promotion_survives_restart(self):
        proxy = self.proxy_with()
        proxy.write_config(self.with_upstream(proxy, "green"))
        self.reload_api(proxy)
        proxy.op(NAME, "promote", {"full": True})
        done = proxy.status()
        self.assertEqual((done["phase"], done["stable"], done["canary"]), ("Healthy", "green", None))
        proxy.restart(hard=True)
        self.assertEqual(proxy.status(), done)
        self.assertEqual(proxy.colors(20), {"green": 20})
        self.assertEqual(proxy.sigterm(), 0)
        proxy.start()
        self.assertEqual(proxy.status(), done)
        self.assertEqual(proxy.colors(20, {"X-Canary": "always"}), {"green": 20})

    def test_sigterm_exits_0(self):
        proxy = self.proxy_with()
        client = DataClient(proxy.port)  # an idle keep-alive connection is closed by the drain
        self.addCleanup(client.close)
        self.assertEqual(client.color(), "blue")
        t0 = time.monotonic()
        rc = proxy.sigterm()
        self.assertEqual(rc, 0, proxy.logs())
        self.assertLess(time.monotonic() - t0, 5.0)


if __name__ == "__main__":
    unittest.main()
