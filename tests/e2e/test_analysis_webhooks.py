"""Webhooks end to end (docs/analysis.md#webhooks): `event` receivers get every transition in
order, `post-rollout` is called once the rollout completes, and a `rollback` webhook answering
2xx aborts the rollout with cause `webhook`. Receivers are Python servers in this process."""

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
        proxy = self.proxy_for(
            [{"setWeight": 50}, {"pause": {}}],
            [{"name": "chat", "type": "event", "url": events.url(), "metadata": {"team": "a"}},
             {"name": "done", "type": "post-rollout", "url": post.url()}])
        proxy.op(NAME, "upstream", {"upstream": "green"})
        proxy.op(NAME, "promote")
        proxy.wait_status(lambda s: s["phase"] == "Healthy", NAME)
        expected = [e["message"] for e in proxy.events(NAME)["events"]]
        bodies = poll(lambda: (lambda b: b if len(b) >= len(expected) else None)(
            events.received()), what="every event delivered")
        self.assertEqual([b["message"] for b in bodies], expected)
        self.assertEqual(bodies[0]["route"], NAME)
        self.assertEqual(bodies[0]["metadata"], {"team": "a"})
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


if __name__ == "__main__":
    import unittest
    unittest.main()
