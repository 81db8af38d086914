"""Instant undo and the blue-green recipe (docs/rollouts.md), through the API and canaryctl, with
kill -9 restarts before and after an undo and a reload that removes the previous stable."""

import collections
import unittest

from harness import E2ETestCase, ctl, make_config, route

NAME = "canary-demo"
BLUE_GREEN = [{"pause": {}}]  # preview at weight 0, one promote switches everything


class UndoTest(E2ETestCase):

    def setUp(self):
        super().setUp()
        self.proxy = self.demo_proxy(steps=BLUE_GREEN)

    def ctl(self, *args, expect=0):
        r = ctl(self.proxy.admin_url, *args)
        self.assertEqual(r.returncode, expect,
                         f"canaryctl {' '.join(args)}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        return r

    def split(self, n=20, headers=None):
        return collections.Counter(self.proxy.colors(n, headers=headers))

    def complete_to_green(self):
        self.proxy.op(NAME, "upstream", {"upstream": "green"})
        # The preview: plain traffic stays on blue, the header override reaches green.
        self.assertEqual(self.split(), {"blue": 20})
        self.assertEqual(self.split(5, {"X-Canary": "always"}), {"green": 5})
        r = self.ctl("promote", NAME)
        self.assertIn("promoted", r.stdout)
        s = self.proxy.status()
        self.assertEqual((s["phase"], s["stable"], s["canary"], s["previous_stable"]),
                         ("Healthy", "green", None, "blue"))
        self.assertEqual(self.split(), {"green": 20})

    def test_blue_green_then_undo_and_redo(self):
        self.assertIsNone(self.proxy.status()["previous_stable"])
        self.complete_to_green()

        r = self.ctl("undo", NAME)
        self.assertIn(f"rollout '{NAME}' undone", r.stdout)
        s = self.proxy.status()
        self.assertEqual((s["phase"], s["stable"], s["canary"], s["previous_stable"]),
                         ("Healthy", "blue", None, "green"))
        self.assertEqual(self.split(), {"blue": 20})
        last = self.proxy.events()["events"][-1]
        self.assertEqual(last["cause"], "api")
        self.assertEqual(last["message"], "Rollout undone: blue is stable again, replacing green")

        # A second undo redoes.
        s = self.proxy.op(NAME, "undo").json()
        self.assertEqual((s["stable"], s["previous_stable"]), ("green", "blue"))
        self.assertEqual(self.split(), {"green": 20})

    def test_409_without_previous_stable_and_during_a_rollout(self):
        body = self.assertApiError(self.proxy.op(NAME, "undo", expect=None), 409)
        self.assertIn("no previous stable", body["error"])
        r = self.ctl("undo", NAME, expect=1)
        self.assertIn("no previous stable", r.stderr)

        self.complete_to_green()
        self.proxy.op(NAME, "upstream", {"upstream": "blue"})  # a rollout back to blue, paused
        body = self.assertApiError(self.proxy.op(NAME, "undo", expect=None), 409)
        self.assertIn("a rollout to blue exists", body["error"])
        self.assertEqual(self.proxy.status()["canary"], "blue")

    def test_kill9_before_and_after_undo(self):
        self.complete_to_green()
        self.proxy.restart(hard=True)  # before the undo
        s = self.proxy.status()
        self.assertEqual((s["stable"], s["previous_stable"]), ("green", "blue"))
        self.assertEqual(self.split(), {"green": 20})

        self.ctl("undo", NAME)
        self.proxy.restart(hard=True)  # after it
        s = self.proxy.status()
        self.assertEqual((s["phase"], s["stable"], s["previous_stable"]),
                         ("Healthy", "blue", "green"))
        self.assertEqual(self.split(), {"blue": 20})
        self.ctl("undo", NAME)  # the redo still works after the restart
        self.assertEqual(self.proxy.status()["stable"], "green")

    def test_reload_removing_the_previous_stable_drops_it(self):
        self.complete_to_green()
        cfg = make_config({"green": self.green.endpoint},
                          [route(upstream="green", steps=BLUE_GREEN)])
        self.proxy.write_config(cfg)
        mark = self.proxy.process.log_mark()
        r = self.proxy.admin("POST", "/api/v1/config/reload")
        self.assertEqual(r.status, 200, r.text)
        self.proxy.process.wait_for_log(r'previous stable "blue" is no longer configured',
                                        mark=mark)
        self.assertIsNone(self.proxy.status()["previous_stable"])
        self.assertApiError(self.proxy.op(NAME, "undo", expect=None), 409)
        # Dropped durably: a restart does not bring it back.
        self.proxy.restart(hard=True)
        self.assertIsNone(self.proxy.status()["previous_stable"])


if __name__ == "__main__":
    unittest.main()
