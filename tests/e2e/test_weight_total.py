"""Changing a route's weight_total mid-rollout keeps the canary's share: the stored weight is
rescaled (rounded down, never above the new total) on reload and at start, and survives kill -9."""

import copy
import re
import unittest

from harness import E2ETestCase, ctl, make_config, route

NAME = "canary-demo"


def steps(first_weight):
    return [{"setWeight": first_weight}, {"pause": {}}]


class WeightTotalChangeTest(E2ETestCase):

    def setUp(self):
        super().setUp()
        self.blue_green()

    def config(self, weight_total, first_weight, upstream="green"):
        return make_config({"blue": self.blue.endpoint, "green": self.green.endpoint},
                           [route(steps=steps(first_weight), upstream=upstream,
                                  canary={"weight_total": weight_total})])

    def weight_metric(self, proxy):
        text = proxy.admin("GET", "/metrics").text
        m = re.search(r'^canary_proxy_rollout_weight\{route="' + NAME + r'"\} (\S+)$', text, re.M)
        self.assertIsNotNone(m, text)
        return float(m.group(1))

    def assert_ten_percent(self, proxy, weight, weight_total):
        s = proxy.status()
        self.assertEqual((s["phase"], s["step"], s["weight"], s["weight_total"]),
                         ("Paused", 1, weight, weight_total), s)
        self.assertEqual(proxy.colors(100), {"blue": 90, "green": 10})
        self.assertEqual(self.weight_metric(proxy), 10)
        listing = ctl(proxy.admin_url, "list").stdout.splitlines()
        # canaryctl shows the denominator when it is not 100.
        shown = str(weight) if weight_total == 100 else f"{weight}/{weight_total}"
        self.assertEqual(listing[1].split()[4], shown, listing)

    def test_reload_to_another_weight_total_rescales_the_weight(self):
        proxy = self.start_proxy(self.config(1000, 100, upstream="blue"))
        proxy.op(NAME, "upstream", {"upstream": "green"})
        self.assert_ten_percent(proxy, 100, 1000)

        proxy.write_config(self.config(10, 1))
        r = proxy.admin("POST", "/api/v1/config/reload")
        self.assertEqual(r.status, 200, r)
        self.assert_ten_percent(proxy, 1, 10)
        r = ctl(proxy.admin_url, "set-weight", NAME, "100")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("outside 0..10", r.stderr + r.stdout)

        proxy.restart(hard=True)
        self.assert_ten_percent(proxy, 1, 10)

    def test_restart_with_another_weight_total_rescales_the_stored_weight(self):
        proxy = self.start_proxy(self.config(1000, 100, upstream="blue"))
        proxy.op(NAME, "upstream", {"upstream": "green"})
        proxy.sigterm()
        cfg = copy.deepcopy(self.config(100, 10))
        proxy.write_config(cfg)
        proxy.start()
        self.assert_ten_percent(proxy, 10, 100)
        proxy.restart(hard=True)
        self.assert_ten_percent(proxy, 10, 100)


if __name__ == "__main__":
    unittest.main()
