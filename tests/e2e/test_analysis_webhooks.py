"""Webhooks end to end (docs/analysis.md#webhooks): `event` receivers get every transition in
order, `post-rollout` is called once the rollout completes, a `rollback` webhook answering
2xx aborts the rollout with cause `webhook`, `confirm-rollout` keeps the canary pending (not even
X-Canary: always reaches it) until it answers 2xx, and `pre-rollout` aborts on a failure or lets
the steps start. Receivers are Python servers in this process."""

import http.server
import json
import threading

from harness import E2ETestCase, make_config, poll

NAME = "checkout"


class Receiver(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, status=200):
        self.status = status
        self.bodies = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def url(self, path="/hook"):
        return "http://127.0.0.1:%d%s" % (self.server_address[1], path)

    def received(self):
        with self.lock:
            return list(self.bodies)

    def stop(self):
        self.shutdown()
        self.server_close()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        data = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        with self.server.lock:
            self.server.bodies.append(json.loads(body))
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()


class WebhookTest(E2ETestCase):

    def receiver(self, status=200):
        r = Receiver(status)
        self.addCleanup(r.stop)
        return r

    def proxy_for(self, steps, hooks, analysis=None):
        backend = self.receiver()
        r = {"name": NAME, "path_prefix": "/", "upstream": "blue", "steps": steps,
             "webhooks": hooks}
        if analysis:
            r["analysis"] = analysis
        addr = "127.0.0.1:%d" % backend.server_address[1]
        return self.start_proxy(make_config({"blue": addr, "green": addr}, [r]))

    def test_event_and_post_rollout_webhooks(self):
        events = self.receiver()
        post = self.receiver()
        slack = self.receiver()
        proxy = self.proxy_for(
            [{"setWeight": 50}, {"pause": {}}],
            [{"name": "chat", "type": "event", "url": events.url(), "metadata": {"team": "a"}},
             {"name": "done", "type": "post-rollout", "url": post.url()},
             {"name": "room", "type": "event", "url": slack.url(), "format": "slack"}])
        proxy.op(NAME, "upstream", {"upstream": "green"})
        proxy.op(NAME, "promote")
        proxy.wait_status(lambda s: s["phase"] == "Healthy", NAME)
        expected = [e["message"] for e in proxy.events(NAME)["events"]]
        bodies = poll(lambda: (lambda b: b if len(b) >= len(expected) else None)(
            events.received()), what="every event delivered")
        self.assertEqual([b["message"] for b in bodies], expected)
        self.assertEqual(bodies[0]["route"], NAME)
        self.assertEqual(bodies[0]["metadata"], {"team": "a"})
        # format: slack sends {"text": ...}, one line per event, in the same order.
        texts = poll(lambda: (lambda b: b if len(b) >= len(expected) else None)(
            slack.received()), what="every event delivered to the slack webhook")
        self.assertTrue(all(set(b) == {"text"} for b in texts), texts)
        for body, message in zip(texts, expected):
            self.assertIn(NAME, body["text"])
            self.assertIn(message, body["text"])
        done = poll(lambda: post.received(), what="the post-rollout call")
        self.assertEqual(len(done), 1)
        self.assertEqual(done[0]["event"], "completed")
        self.assertEqual(done[0]["stable"], "green")
        text = proxy.admin("GET", "/metrics").text
        self.assertRegex(text, r'canary_proxy_webhook_calls_total\{[^}]*webhook="done"[^}]*'
                               r'result="success"[^}]*\} 1')

    def test_a_rollback_webhook_answering_2xx_aborts(self):
        rollback = self.receiver(200)
        proxy = self.proxy_for(
            [{"setWeight": 50}, {"pause": {}}],
            [{"name": "guard", "type": "rollback", "url": rollback.url()}],
            # The rollback webhook is asked every analysis interval; the metric only measures.
            {"interval": "500ms", "metrics": [{"name": "errors", "builtin": "error_rate_vs_stable",
                                                "dry_run": True}]})
        proxy.op(NAME, "upstream", {"upstream": "green"})
        s = proxy.wait_status(lambda s: s["phase"] == "Degraded", NAME, timeout=30,
                              what="an abort by the rollback webhook")
        self.assertTrue(s["message"].startswith("RollbackWebhook: guard"), s["message"])
        self.assertEqual(proxy.events(NAME)["events"][-1]["cause"], "webhook")

    def test_confirm_promotion_holds_until_2xx_and_promote_overrides(self):
        gate = self.receiver(503)
        proxy = self.proxy_for(
            [{"setWeight": 50}],
            [{"name": "gate", "type": "confirm-promotion", "url": gate.url()}],
            {"interval": "500ms", "metrics": [{"name": "errors", "builtin": "error_rate_vs_stable",
                                                "dry_run": True}]})
        proxy.op(NAME, "upstream", {"upstream": "green"})
        s = proxy.wait_status(
            lambda s: s["message"] == "waiting for confirm-promotion webhook gate: HTTP 503",
            NAME, what="the gate's refusal")
        self.assertEqual((s["phase"], s["paused_by"], s["canary"]), ("Paused", "webhook", "green"))
        gate.status = 200
        s = proxy.wait_status(lambda s: s["phase"] == "Healthy", NAME, what="completion")
        self.assertEqual(s["stable"], "green")
        self.assertEqual(proxy.events(NAME)["events"][-1]["cause"], "webhook")
        # promote decides over a gate that keeps refusing.
        gate.status = 503
        proxy.op(NAME, "upstream", {"upstream": "blue"})
        s = proxy.wait_status(lambda s: s["paused_by"] == "webhook", NAME, what="the hold")
        proxy.op(NAME, "promote")
        s = proxy.status(NAME)
        self.assertEqual((s["phase"], s["stable"]), ("Healthy", "blue"))

    def test_a_failing_rollout_webhook_is_judged_like_a_metric(self):
        hook = self.receiver(500)
        proxy = self.proxy_for(
            [{"setWeight": 50}, {"pause": {}}],
            [{"name": "smoke", "type": "rollout", "url": hook.url()}],
            {"interval": "500ms", "metrics": [{"name": "errors", "builtin": "error_rate_vs_stable",
                                                "dry_run": True}]})
        proxy.op(NAME, "upstream", {"upstream": "green"})
        s = proxy.wait_status(lambda s: s["phase"] == "Degraded", NAME, what="an abort")
        self.assertTrue(s["message"].startswith("AnalysisFailed: smoke"), s["message"])
        m = [m for m in s["analysis"]["metrics"] if m["name"] == "smoke"][0]
        self.assertEqual((m["kind"], m["failed"]), ("webhook", 1))
        self.assertTrue(hook.received())


    def gated_proxy(self, hooks):
        """blue and green demo backends; re-asked every 500 ms (the analysis only measures)."""
        blue, green = self.blue_green()
        r = {"name": NAME, "path_prefix": "/", "upstream": "blue",
             "steps": [{"setWeight": 50}, {"pause": {}}], "webhooks": hooks,
             "analysis": {"interval": "500ms",
                          "metrics": [{"name": "errors", "builtin": "error_rate_vs_stable",
                                       "dry_run": True}]}}
        return self.start_proxy(make_config({"blue": blue.endpoint, "green": green.endpoint}, [r]))

    def test_confirm_rollout_keeps_the_canary_pending_until_2xx(self):
        confirm = self.receiver(503)
        proxy = self.gated_proxy([{"name": "go", "type": "confirm-rollout", "url": confirm.url()}])
        proxy.op(NAME, "upstream", {"upstream": "green"})
        s = proxy.wait_status(
            lambda s: s["message"] == "waiting for confirm-rollout webhook go: HTTP 503",
            NAME, what="the confirm-rollout refusal")
        self.assertEqual((s["phase"], s["paused_by"], s["canary"], s["weight"]),
                         ("Paused", "webhook", "green", 0))
        # Pending: neither the weight nor an override reaches the canary.
        self.assertEqual(proxy.colors(20, {"X-Canary": "always"}), {"blue": 20})
        self.assertEqual(proxy.colors(20), {"blue": 20})
        self.assertEqual(confirm.received()[0]["event"], "confirm-rollout")
        confirm.status = 200
        s = proxy.wait_status(lambda s: s["paused_by"] == "step", NAME,
                              what="the steps after the confirmation")
        self.assertEqual((s["phase"], s["weight"]), ("Paused", 50))
        self.assertEqual(proxy.colors(20, {"X-Canary": "always"}), {"green": 20})
        causes = [(e["cause"], e["message"]) for e in proxy.events(NAME)["events"]]
        self.assertIn(("webhook", "confirm-rollout webhooks answered 2xx"), causes)
        text = proxy.admin("GET", "/metrics").text
        self.assertRegex(text, r'canary_proxy_webhook_calls_total\{[^}]*webhook="go"[^}]*'
                               r'result="failure"[^}]*\} [1-9]')

    def test_a_failing_pre_rollout_webhook_aborts_before_any_traffic(self):
        pre = self.receiver(500)
        proxy = self.gated_proxy([{"name": "smoke", "type": "pre-rollout", "url": pre.url()}])
        proxy.op(NAME, "upstream", {"upstream": "green"})
        s = proxy.wait_status(lambda s: s["phase"] == "Degraded", NAME, what="the abort")
        self.assertEqual(s["message"], "PreRolloutWebhook: smoke failed: HTTP 500")
        self.assertEqual(proxy.events(NAME)["events"][-1]["cause"], "webhook")
        self.assertEqual(len(pre.received()), 1)
        self.assertEqual(proxy.colors(20, {"X-Canary": "always"}), {"blue": 20})

    def test_a_passing_pre_rollout_webhook_starts_the_steps(self):
        pre = self.receiver(200)
        proxy = self.gated_proxy([{"name": "smoke", "type": "pre-rollout", "url": pre.url()}])
        proxy.op(NAME, "upstream", {"upstream": "green"})
        s = proxy.wait_status(lambda s: s["paused_by"] == "step", NAME, what="the steps")
        self.assertEqual((s["phase"], s["weight"]), ("Paused", 50))
        bodies = pre.received()
        self.assertEqual(len(bodies), 1)
        self.assertEqual((bodies[0]["event"], bodies[0]["canary"], bodies[0]["weight"]),
                         ("pre-rollout", "green", 0))


if __name__ == "__main__":
    import unittest
    unittest.main()
