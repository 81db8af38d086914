"""A rollout change is durable before it is answered or routed: a full or read-only state
directory refuses operations with 503 and holds timed steps, changing nothing; a symlinked
state file keeps its link. The state directory is a small tmpfs mounted for the test (root only);
every mount is undone in cleanup."""

import errno
import os
import re
import subprocess
import unittest

from harness import E2ETestCase, make_config, poll, route

NAME = "canary-demo"

# Manual pauses only: nothing moves unless the test asks.
MANUAL_STEPS = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]


def key(s):
    return (s["phase"], s["step"], s["weight"], s["paused_by"], s["stable"], s["canary"])


def can_mount():
    if os.geteuid() != 0 or not os.path.exists("/proc/filesystems"):
        return False
    with open("/proc/filesystems") as f:
        return "tmpfs" in f.read()


def metric(proxy, name):
    text = proxy.admin("GET", "/metrics").text
    m = re.search(r"^" + re.escape(name) + r" (\S+)$", text, re.M)
    if not m:
        raise AssertionError(f"{name} not in /metrics:\n{text}")
    return float(m.group(1))


def read(path):
    with open(path, "rb") as f:
        return f.read()


@unittest.skipUnless(can_mount(), "needs root and tmpfs to mount a small state directory")
class FullOrReadOnlyStateDirTest(E2ETestCase):

    def setUp(self):
        super().setUp()
        self.state_dir = self.path("state")
        os.mkdir(self.state_dir)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", self.state_dir],
                       check=True)
        # Registered before the proxy's cleanups, so it runs after the proxy is gone.
        self.addCleanup(self.unmount)
        self.state_file = os.path.join(self.state_dir, "state.json")
        self.blue_green()

    def unmount(self):
        try:
            subprocess.run(["umount", self.state_dir], check=True)
        finally:
            if os.path.ismount(self.state_dir):
                subprocess.run(["umount", "-l", self.state_dir], check=False)

    def start(self, steps):
        cfg = make_config({"blue": self.blue.endpoint, "green": self.green.endpoint},
                          [route(steps=steps)], state_file=self.state_file)
        proxy = self.start_proxy(cfg)
        proxy.op(NAME, "upstream", {"upstream": "green"})
        return proxy

    def fill(self):
        """Writes a file until the tmpfs has no space left."""
        path = os.path.join(self.state_dir, "filler")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError as e:
            self.assertEqual(e.errno, errno.ENOSPC, e)
        finally:
            os.close(fd)
        return path

    def assert_refused(self, proxy, action, reason):
        r = proxy.op(NAME, action, expect=None)
        body = self.assertApiError(r, 503)
        self.assertIn(f"cannot write state file {self.state_file}", body["error"])
        self.assertIn(reason, body["error"])

    def test_full_disk_refuses_operations_and_changes_nothing(self):
        proxy = self.start(MANUAL_STEPS)
        before = proxy.status()
        self.assertEqual(key(before), ("Paused", 1, 20, "step", "blue", "green"))
        file_before = read(self.state_file)
        filler = self.fill()

        self.assert_refused(proxy, "promote", "No space left on device")
        self.assert_refused(proxy, "abort", "No space left on device")
        r = proxy.admin("PUT", f"/api/v1/rollouts/{NAME}/upstream", {"upstream": "blue"})
        self.assertApiError(r, 503)
        self.assertEqual(proxy.status(), before)
        self.assertEqual(proxy.colors(100), {"blue": 80, "green": 20})
        self.assertEqual(read(self.state_file), file_before)
        self.assertEqual(sorted(os.listdir(self.state_dir)), ["filler", "state.json"])
        self.assertEqual(metric(proxy, "canary_proxy_state_write_errors_total"), 3)

        os.unlink(filler)
        proxy.op(NAME, "promote")
        self.assertEqual(key(proxy.status()), ("Paused", 3, 50, "step", "blue", "green"))
        with open(self.state_file) as f:
            self.assertEqual(f.read().count('"weight": 50,'), 1)
        self.assertEqual(proxy.colors(100), {"blue": 50, "green": 50})

    def test_full_disk_refuses_a_reload(self):
        proxy = self.start(MANUAL_STEPS)
        before = proxy.status()
        self.fill()
        cfg = dict(proxy.config)
        cfg["routes"] = [route(steps=MANUAL_STEPS, upstream="green")]
        proxy.write_config(cfg)
        body = self.assertApiError(proxy.admin("POST", "/api/v1/config/reload"), 503)
        self.assertIn("No space left on device", body["error"])
        self.assertIn("the old config keeps serving", body["error"])
        self.assertEqual(proxy.status(), before)

    def test_read_only_disk_holds_a_timed_pause_until_writable(self):
        steps = [{"setWeight": 20}, {"pause": {"duration": "4s"}}, {"setWeight": 50},
                 {"pause": {}}]
        proxy = self.start(steps)
        subprocess.run(["mount", "-o", "remount,ro", self.state_dir], check=True)
        s = proxy.status()
        self.assertEqual(key(s), ("Paused", 1, 20, "step", "blue", "green"),
                         "the timed pause ended before the remount: the test needs a longer one")
        file_before = read(self.state_file)
        self.assert_refused(proxy, "pause", "Read-only file system")

        # The pause ends while read-only: the timer's save fails, again and again, and the
        # rollout stays where it was.
        poll(lambda: metric(proxy, "canary_proxy_state_write_errors_total") >= 3,
             timeout=30, what="failed timer saves")
        s = proxy.status()
        self.assertEqual(key(s), ("Paused", 1, 20, "step", "blue", "green"))
        self.assertEqual(s["pause_remaining_s"], 0)
        self.assertEqual(proxy.colors(100), {"blue": 80, "green": 20})
        self.assertEqual(read(self.state_file), file_before)

        subprocess.run(["mount", "-o", "remount,rw", self.state_dir], check=True)
        s = proxy.wait_status(lambda s: s["step"] == 3, what="the held step once writable")
        self.assertEqual(key(s), ("Paused", 3, 50, "step", "blue", "green"))
        with open(self.state_file) as f:
            self.assertEqual(f.read().count('"weight": 50,'), 1)


    def test_start_refuses_when_the_first_state_cannot_be_written(self):
        subprocess.run(["mount", "-o", "remount,ro", self.state_dir], check=True)
        cfg = make_config({"blue": self.blue.endpoint, "green": self.green.endpoint},
                          [route(steps=MANUAL_STEPS)], state_file=self.state_file)
        proxy = self.new_proxy(cfg)
        rc, out = proxy.start_expect_failure()
        self.assertNotEqual(rc, 0)
        self.assertIn(f"cannot write state file {self.state_file}", out)
        self.assertIn("Read-only file system", out)
        self.assertIn("refusing to start", out)


class SymlinkedStateFileTest(E2ETestCase):

    def test_a_symlinked_state_file_is_written_where_it_points(self):
        blue, green = self.blue_green()
        os.mkdir(self.path("persist"))
        os.symlink(os.path.join("persist", "st.json"), self.path("st.json"))
        cfg = make_config({"blue": blue.endpoint, "green": green.endpoint},
                          [route(steps=MANUAL_STEPS)], state_file="st.json")
        proxy = self.start_proxy(cfg)
        proxy.op(NAME, "upstream", {"upstream": "green"})
        self.assertTrue(os.path.islink(self.path("st.json")), "the link was replaced")
        with open(self.path("persist", "st.json")) as f:
            self.assertIn('"canary": "green"', f.read())
        self.assertEqual(os.listdir(self.path("persist")), ["st.json"])

        proxy.restart(hard=True)
        self.assertEqual(key(proxy.status()), ("Paused", 1, 20, "step", "blue", "green"))


if __name__ == "__main__":
    unittest.main()
