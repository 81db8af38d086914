"""The classic canary flow through the control API (see docs/rollouts.md and
docs/control-api.md)."""

import re
import time
import unittest

from harness import SSEClient, E2ETestCase, make_config, route

NAME = "canary-demo"
STATUS_KEYS = {"name", "phase", "message", "stable", "canary", "weight", "actual_weight",
               "weight_total", "step", "steps", "paused_by", "pause_remaining_s", "updated_at",
               "previous_stable", "mirror", "store"}
RFC3339 = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"


def key(s):
    return (s["phase"], s["step"], s["weight"], s["paused_by"])


class FlowTest(E2ETestCase):

    def setUp(self):
        super().setUp()
        self.proxy = self.demo_proxy()

    def start_rollout(self):
        s = self.proxy.op(NAME, "upstream", {"upstream": "green"}).json()
        self.assertEqual(key(s), ("Paused", 1, 20, "step"), s)
        return s

    def test_initial_status_shape(self):
        s = self.proxy.status()
        self.assertEqual(set(s), STATUS_KEYS)
        self.assertEqual(s["name"], NAME)
        self.assertEqual((s["phase"], s["stable"], s["canary"], s["weight"], s["actual_weight"]),
                         ("Healthy", "blue", None, 0, 0))
        self.assertEqual(s["weight_total"], 100)
        self.assertEqual(s["steps"], [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50},
                                      {"pause": {"duration": "2s"}}, {"setWeight": 70},
                                      {"pause": {"duration": "1s"}}])
        self.assertEqual(s["step"], 6)  # no rollout: complete
        self.assertIsNone(s["paused_by"])
        self.assertIsNone(s["pause_remaining_s"])
        self.assertRegex(s["updated_at"], RFC3339)
        listing = self.proxy.admin("GET", "/api/v1/rollouts").json()
        self.assertEqual(list(listing), ["rollouts"])
        self.assertEqual(listing["rollouts"], [s])

    def test_full_flow_to_healthy(self):
        s = self.start_rollout()
        self.assertEqual((s["canary"], s["stable"], s["actual_weight"]), ("green", "blue", 20))
        self.assertIsNone(s["pause_remaining_s"])
        self.assertEqual(s["message"], s["message"].strip())
        self.assertEqual(self.proxy.colors(100), {"blue": 80, "green": 20})

        s = self.proxy.op(NAME, "promote").json()
        self.assertEqual(key(s), ("Paused", 3, 50, "step"), s)
        self.assertIsInstance(s["pause_remaining_s"], (int, float))
        self.assertTrue(0 < s["pause_remaining_s"] <= 2.0, s)
        self.assertEqual(self.proxy.colors(100), {"blue": 50, "green": 50})

        # The 2 s pause runs out by itself, then 70 %, then the 1 s pause, then complete.
        s = self.proxy.wait_status(lambda s: s["step"] >= 5, what="the timed pause to end")
        if s["phase"] != "Healthy":
            self.assertEqual((s["phase"], s["step"], s["weight"]), ("Paused", 5, 70), s)
        s = self.proxy.wait_status(lambda s: s["phase"] == "Healthy", what="Healthy")
        self.assertEqual((s["stable"], s["canary"], s["weight"], s["step"], s["paused_by"]),
                         ("green", None, 0, 6, None), s)
        self.assertEqual(self.proxy.colors(50), {"green": 50})
        self.assertEqual(self.proxy.colors(10, {"X-Canary": "always"}), {"green": 10})

        causes = [(e["cause"], e["to"]) for e in self.proxy.events()["events"]]
        self.assertSubsequence(causes, [("api", "Progressing"), ("step", "Paused"),
                                        ("api", "Progressing"), ("step", "Paused"),
                                        ("timer", "Progressing"), ("step", "Paused"),
                                        ("timer", "Progressing"), ("step", "Healthy")])

        # Promote on a Healthy rollout: 409 with the reason.
        body = self.assertApiError(self.proxy.op(NAME, "promote", expect=None), 409)
        self.assertIn("Healthy", body["error"])

    def test_promote_full(self):
        self.start_rollout()
        s = self.proxy.op(NAME, "promote", {"full": True}).json()
        self.assertEqual((s["phase"], s["stable"], s["canary"], s["weight"]),
                         ("Healthy", "green", None, 0))
        self.assertEqual(self.proxy.colors(20), {"green": 20})

    def test_abort_and_retry(self):
        self.start_rollout()
        s = self.proxy.op(NAME, "abort").json()
        self.assertEqual((s["phase"], s["weight"], s["actual_weight"], s["step"]),
                         ("Degraded", 0, 0, 0), s)
        self.assertTrue(s["message"].startswith("RolloutAborted"), s["message"])
        self.assertEqual(s["stable"], "blue")
        self.assertEqual(self.proxy.colors(30), {"blue": 30})
        self.assertEqual(self.proxy.colors(10, {"X-Canary": "always"}), {"blue": 10})
        # Abort again, promote, pause, set weight: 409 while Degraded.
        for action, body in (("abort", None), ("promote", None), ("pause", None),
                             ("resume", None), ("weight", {"weight": 10})):
            self.assertApiError(self.proxy.op(NAME, action, body, expect=None), 409)

        s = self.proxy.op(NAME, "retry").json()
        self.assertEqual(key(s), ("Paused", 1, 20, "step"), s)
        self.assertEqual(s["canary"], "green")
        self.assertEqual(self.proxy.colors(100), {"blue": 80, "green": 20})
        self.assertApiError(self.proxy.op(NAME, "retry", expect=None), 409)

        # promote full is valid when Degraded.
        self.proxy.op(NAME, "abort")
        s = self.proxy.op(NAME, "promote", {"full": True}).json()
        self.assertEqual((s["phase"], s["stable"], s["canary"]), ("Healthy", "green", None))

    def test_pause_and_resume(self):
        self.start_rollout()
        # Paused by step: resume is refused (promote ends a step's pause).
        body = self.assertApiError(self.proxy.op(NAME, "resume", expect=None), 409)
        self.assertTrue(body["error"])
        s = self.proxy.op(NAME, "pause").json()
        self.assertEqual(key(s), ("Paused", 1, 20, "user"))
        self.assertApiError(self.proxy.op(NAME, "pause", expect=None), 409)
        s = self.proxy.op(NAME, "resume").json()
        self.assertEqual(key(s), ("Paused", 1, 20, "step"), s)  # pause {} still waits

    def test_pause_holds_a_timed_pause_clock(self):
        self.start_rollout()
        s = self.proxy.op(NAME, "promote").json()
        self.assertEqual(key(s), ("Paused", 3, 50, "step"))
        s = self.proxy.op(NAME, "pause").json()
        self.assertEqual(s["paused_by"], "user")
        held = s["pause_remaining_s"]
        self.assertTrue(0 < held <= 2.0, s)
        # The clock is stopped: the remaining time stays, and the pause does not end.
        t0 = time.monotonic()
        s = self.proxy.wait_status(lambda s: time.monotonic() - t0 > 2.5, timeout=5,
                                   what="2.5 s to pass")
        self.assertEqual(key(s), ("Paused", 3, 50, "user"))
        self.assertEqual(s["pause_remaining_s"], held)
        s = self.proxy.op(NAME, "resume").json()
        self.assertEqual(key(s), ("Paused", 3, 50, "step"))
        self.assertTrue(0 < s["pause_remaining_s"] <= held, s)
        s = self.proxy.wait_status(lambda s: s["step"] >= 5, what="the resumed pause to end")

    def test_set_weight(self):
        self.start_rollout()
        s = self.proxy.op(NAME, "weight", {"weight": 35}).json()
        self.assertEqual((s["weight"], s["actual_weight"], s["step"], s["phase"]),
                         (35, 35, 1, "Paused"))
        self.assertEqual(self.proxy.colors(100), {"blue": 65, "green": 35})
        # The next setWeight step overrides it.
        s = self.proxy.op(NAME, "promote").json()
        self.assertEqual(s["weight"], 50)
        for bad in ({"weight": 101}, {"weight": -1}, {"weight": "20"}, {"weight": 2.5}, {},
                    {"weight": 20, "extra": 1}):
            self.assertApiError(self.proxy.op(NAME, "weight", bad, expect=None), 400)
        self.assertEqual(self.proxy.status()["weight"], 50)

    def test_set_weight_refused_when_healthy(self):
        self.assertApiError(self.proxy.op(NAME, "weight", {"weight": 10}, expect=None), 409)

    def test_upstream_changes(self):
        self.assertApiError(self.proxy.op(NAME, "upstream", {"upstream": "purple"}, expect=None),
                            400)
        self.assertApiError(self.proxy.op(NAME, "upstream", {"color": "green"}, expect=None), 400)
        # Setting the stable version while Healthy changes nothing.
        s = self.proxy.op(NAME, "upstream", {"upstream": "blue"}).json()
        self.assertEqual((s["phase"], s["canary"]), ("Healthy", None))
        self.start_rollout()
        # The current canary again: nothing changes.
        s = self.proxy.op(NAME, "upstream", {"upstream": "green"}).json()
        self.assertEqual(key(s), ("Paused", 1, 20, "step"))
        # The stable version while a rollout runs: rolled back.
        s = self.proxy.op(NAME, "upstream", {"upstream": "blue"}).json()
        self.assertEqual((s["phase"], s["stable"], s["canary"], s["weight"]),
                         ("Healthy", "blue", None, 0))
        self.assertEqual(self.proxy.colors(20, {"X-Canary": "always"}), {"blue": 20})

    def test_events(self):
        self.start_rollout()
        self.proxy.op(NAME, "promote")
        ev = self.proxy.events()
        self.assertEqual(set(ev), {"name", "events"})
        self.assertEqual(ev["name"], NAME)
        for e in ev["events"]:
            self.assertEqual(set(e), {"time", "from", "to", "step", "weight", "cause", "message"})
            self.assertRegex(e["time"], RFC3339)
            self.assertIn(e["cause"], ("step", "api", "config", "timer"))
            for k in ("from", "to"):
                self.assertIn(e[k], ("Healthy", "Progressing", "Paused", "Degraded"))
        first = ev["events"][0]
        self.assertEqual((first["from"], first["cause"]), ("Healthy", "api"))
        self.assertIn("green", first["message"])
        last = ev["events"][-1]
        self.assertEqual((last["to"], last["step"], last["weight"]), ("Paused", 3, 50))


class ErrorsTest(E2ETestCase):

    def setUp(self):
        super().setUp()
        self.proxy = self.demo_proxy()

    def test_unknown_rollout_is_404(self):
        self.assertApiError(self.proxy.admin("GET", "/api/v1/rollouts/nope"), 404)
        self.assertApiError(self.proxy.admin("POST", "/api/v1/rollouts/nope/promote"), 404)
        self.assertApiError(self.proxy.admin("GET", "/api/v1/rollouts/nope/events"), 404)
        self.assertApiError(self.proxy.admin("GET", "/api/v1/nothing"), 404)
        self.assertApiError(self.proxy.admin("POST", f"/api/v1/rollouts/{NAME}/jump"), 404)

    def test_wrong_method_is_405(self):
        for method, path in (("GET", f"/api/v1/rollouts/{NAME}/promote"),
                             ("PUT", f"/api/v1/rollouts/{NAME}/promote"),
                             ("POST", f"/api/v1/rollouts/{NAME}/weight"),
                             ("DELETE", f"/api/v1/rollouts/{NAME}"),
                             ("POST", "/api/v1/rollouts"),
                             ("GET", "/api/v1/config/reload")):
            r = self.proxy.admin(method, path)
            self.assertApiError(r, 405)

    def test_body_without_json_content_type_is_415(self):
        r = self.proxy.admin("POST", f"/api/v1/rollouts/{NAME}/promote", b'{"full": true}',
                             {"Content-Type": "text/plain"})
        self.assertApiError(r, 415)
        r = self.proxy.admin("PUT", f"/api/v1/rollouts/{NAME}/upstream", b'{"upstream": "green"}')
        self.assertApiError(r, 415)  # no Content-Type at all
        self.assertEqual(self.proxy.status()["canary"], None, "the refused call had an effect")
        r = self.proxy.admin("PUT", f"/api/v1/rollouts/{NAME}/upstream", b'{"upstream": "green"}',
                             {"Content-Type": "application/json; charset=utf-8"})
        self.assertEqual(r.status, 200, r)

    def test_chunked_body_without_json_content_type_is_415(self):
        from harness import raw_exchange
        port = self.proxy.admin_port
        r = raw_exchange(port, (f"PUT /api/v1/rollouts/{NAME}/upstream HTTP/1.1\r\n"
                                f"Host: 127.0.0.1:{port}\r\nContent-Type: text/plain\r\n"
                                "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                                '15\r\n{"upstream": "green"}\r\n0\r\n\r\n').encode())
        self.assertApiError(r, 415)
        self.assertEqual(self.proxy.status()["canary"], None)

    def test_bad_json_is_400(self):
        for body in (b"{not json", b"[1, 2]", b'"green"'):
            r = self.proxy.admin("PUT", f"/api/v1/rollouts/{NAME}/upstream", body,
                                 {"Content-Type": "application/json"})
            self.assertApiError(r, 400)
        r = self.proxy.admin("POST", f"/api/v1/rollouts/{NAME}/promote", b'{"full": "yes"}',
                             {"Content-Type": "application/json"})
        self.assertApiError(r, 400)

    def test_post_without_body_works(self):
        self.proxy.op(NAME, "upstream", {"upstream": "green"})
        # Like `curl -X POST .../promote`: no Content-Length, no Content-Type.
        from harness import raw_exchange
        r = raw_exchange(self.proxy.admin_port,
                         f"POST /api/v1/rollouts/{NAME}/promote HTTP/1.1\r\n"
                         f"Host: 127.0.0.1:{self.proxy.admin_port}\r\nUser-Agent: curl/7.88\r\n"
                         "Accept: */*\r\nConnection: close\r\n\r\n".encode())
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.proxy.status()["weight"], 50)

    def test_health_endpoints(self):
        for path in ("/healthz", "/readyz"):
            r = self.proxy.admin("GET", path)
            self.assertEqual((r.status, r.text.strip()), (200, "ok"))


class OriginTest(E2ETestCase):

    def setUp(self):
        super().setUp()
        self.proxy = self.demo_proxy()
        self.proxy.op(NAME, "upstream", {"upstream": "green"})

    def pause(self, origin):
        return self.proxy.admin("POST", f"/api/v1/rollouts/{NAME}/pause",
                                headers={"Origin": origin})

    def test_foreign_origins_are_403(self):
        port = self.proxy.admin_port
        for origin in ("http://evil.example", "null", f"http://evil.example:{port}",
                       f"http://127.0.0.1:{port + 1 if port < 65535 else port - 1}",
                       f"https://127.0.0.1:{port}"):
            self.assertApiError(self.pause(origin), 403)
        self.assertEqual(self.proxy.status()["paused_by"], "step", "a refused call had an effect")
        r = self.proxy.admin("GET", f"/api/v1/rollouts/{NAME}", headers={"Origin": "null"})
        self.assertApiError(r, 403)
        r = self.proxy.admin("GET", "/api/v1/watch", headers={"Origin": "http://evil.example"})
        self.assertApiError(r, 403)

    def test_own_origins_are_allowed(self):
        port = self.proxy.admin_port
        r = self.pause(f"http://127.0.0.1:{port}")
        self.assertEqual(r.status, 200, r)
        r = self.proxy.admin("POST", f"/api/v1/rollouts/{NAME}/resume",
                             headers={"Origin": f"http://localhost:{port}"})
        self.assertEqual(r.status, 200, r)
        r = self.pause(f"http://[::1]:{port}")
        self.assertEqual(r.status, 200, r)


class TokenTest(E2ETestCase):

    def setUp(self):
        super().setUp()
        token_file = self.write("token", "  s3cret-token\n")
        self.proxy = self.demo_proxy(token_file=token_file)

    def test_mutating_calls_need_the_token(self):
        url = f"/api/v1/rollouts/{NAME}/upstream"
        body = {"upstream": "green"}
        self.assertApiError(self.proxy.admin("PUT", url, body), 401)
        self.assertApiError(self.proxy.admin("PUT", url, body,
                                             {"Authorization": "Bearer wrong"}), 401)
        self.assertApiError(self.proxy.admin("PUT", url, body,
                                             {"Authorization": "Bearer s3cret-tokenX"}), 401)
        self.assertApiError(self.proxy.admin("PUT", url, body,
                                             {"Authorization": "s3cret-token"}), 401)
        self.assertApiError(self.proxy.admin("POST", "/api/v1/config/reload"), 401)
        # Authentication comes first: no token and a bad body still answers 401.
        self.assertApiError(self.proxy.admin("PUT", url, b"{bad", {"Content-Type": "text/plain"}),
                            401)
        self.assertEqual(self.proxy.status()["canary"], None)
        r = self.proxy.admin("PUT", url, body, {"Authorization": "Bearer s3cret-token"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["canary"], "green")

    def test_authentication_comes_before_origin(self):
        url = f"/api/v1/rollouts/{NAME}/upstream"
        body = {"upstream": "green"}
        evil = {"Origin": "http://evil.example"}
        self.assertApiError(self.proxy.admin("PUT", url, body, evil), 401)
        self.assertApiError(self.proxy.admin(
            "PUT", url, body, dict(evil, Authorization="Bearer s3cret-token")), 403)
        self.assertEqual(self.proxy.status()["canary"], None)

    def test_reads_need_no_token(self):
        self.assertEqual(self.proxy.admin("GET", "/api/v1/rollouts").status, 200)
        self.assertEqual(self.proxy.admin("GET", f"/api/v1/rollouts/{NAME}/events").status, 200)


class WatchTest(E2ETestCase):

    def test_watch_one_rollout(self):
        proxy = self.demo_proxy()
        proxy.op(NAME, "upstream", {"upstream": "green"})
        w = SSEClient(proxy.admin_port, f"/api/v1/rollouts/{NAME}/watch")
        self.addCleanup(w.close)
        self.assertEqual(w.status, 200)
        self.assertIn("text/event-stream", w.header("Content-Type"))
        s = w.next_status()
        self.assertEqual(set(s), STATUS_KEYS)
        self.assertEqual(key(s), ("Paused", 1, 20, "step"))
        proxy.op(NAME, "promote")
        s = w.next_status()
        self.assertEqual(key(s), ("Paused", 3, 50, "step"), s)
        proxy.op(NAME, "abort")
        s = w.next_status()
        self.assertEqual((s["phase"], s["weight"]), ("Degraded", 0), s)

    def test_watch_all_rollouts(self):
        blue, green = self.blue_green()
        proxy = self.start_proxy(make_config(
            {"blue": blue.endpoint, "green": green.endpoint},
            [route(name="web", hosts=["web.test"]), route(name="api", hosts=["api.test"])]))
        w = SSEClient(proxy.admin_port, "/api/v1/watch")
        self.addCleanup(w.close)
        first = [w.next_status(), w.next_status()]
        self.assertEqual(sorted(s["name"] for s in first), ["api", "web"])
        proxy.op("api", "upstream", {"upstream": "green"})
        s = w.next_status()
        self.assertEqual((s["name"], s["phase"], s["weight"]), ("api", "Paused", 20))


if __name__ == "__main__":
    unittest.main()
