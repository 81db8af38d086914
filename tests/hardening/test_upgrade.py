"""Binary upgrade (SIGUSR2, docs/upgrade.md): under wrk, two hand-overs in a row fail no request
and leave the rollout state as it was, the new process serves on the same port and tells the
systemd notify socket its pid; a new binary that fails to start (exits, or hangs until killed)
leaves the old process serving everything, with mutating API calls answered 503 only while the
hand-over runs.

The test process makes itself a child subreaper (prctl), so the processes the proxy starts are
reaped here; every process of a proxy's group is killed at cleanup."""

import ctypes
import os
import re
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import time
import unittest

from hardening import HardeningTestCase, make_config, poll, route
from harness import Process, Proxy, binary

NAME = "canary-demo"
WRK_SECONDS = 10
PR_SET_CHILD_SUBREAPER = 36


def make_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def reap(pid, timeout=30.0):
    """Waits for `pid` (a child of this subreaper) to exit; returns its exit code."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    raise AssertionError(f"pid {pid} did not exit within {timeout}s")


class UpgradeProxy(Proxy):
    """A proxy started from `exe` with NOTIFY_SOCKET set."""

    def __init__(self, workdir, config, exe, notify_path):
        super().__init__(workdir, config)
        self.exe = exe
        self.notify_path = notify_path

    def launch(self):
        env = dict(os.environ, NOTIFY_SOCKET=self.notify_path)
        return Process([self.exe, "--config", self.config_path], env=env)


@unittest.skipUnless(make_subreaper(), "needs prctl(PR_SET_CHILD_SUBREAPER)")
class UpgradeTest(HardeningTestCase):

    def setUp(self):
        super().setUp()
        self.blue_green()
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify_path = self.path("notify.sock")
        self.notify.bind(self.notify_path)
        self.notify.settimeout(10)
        self.addCleanup(self.notify.close)

    def start(self, exe, workers=2, steps=None, tls=None):
        steps = steps or [{"setWeight": 20}, {"pause": {}}]
        cfg = make_config({"blue": self.blue.endpoint, "green": self.green.endpoint},
                          [route(steps=steps)], workers=workers)
        if tls:
            cfg["tls"] = tls
        proxy = UpgradeProxy(self.tmp, cfg, exe, self.notify_path)
        self.addCleanup(self._dump_logs_on_failure, proxy)
        self.addCleanup(proxy.stop)
        proxy.start()
        # The whole group: the processes a hand-over starts stay in it.
        self.addCleanup(self.kill_group, proxy.process.pid)
        self.assertEqual(self.notify.recv(4096), b"READY=1")
        return proxy

    def kill_group(self, pgid):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        while True:  # reap whatever of it ended here
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break

    def rollout_key(self, proxy):
        s = proxy.status()
        return (s["phase"], s["step"], s["weight"], s["stable"], s["canary"], s["paused_by"],
                len(proxy.events()["events"]))

    def hand_over(self, proxy, old_pid, mark):
        """SIGUSR2 to old_pid; returns the new pid once it serves."""
        os.kill(old_pid, signal.SIGUSR2)
        m = proxy.process.wait_for_log(rf"SIGUSR2: handing over to pid (\d+)", mark=mark)
        new_pid = int(m.group(1))
        proxy.process.wait_for_log(rf"upgrade: pid {new_pid} serves on the handed-over listeners",
                                   mark=mark)
        self.assertEqual(self.notify.recv(4096), f"MAINPID={new_pid}\nREADY=1".encode())
        return new_pid

    def test_two_upgrades_under_wrk(self):
        wrk = shutil.which("wrk")
        self.assertIsNotNone(wrk, "wrk is not installed (make deps installs it)")
        proxy = self.start(binary("canary-proxy"))
        proxy.op(NAME, "upstream", {"upstream": "green"})
        before = self.rollout_key(proxy)
        port, admin_port = proxy.port, proxy.admin_port

        load = subprocess.Popen([wrk, "-t2", "-c32", f"-d{WRK_SECONDS}s",
                                 f"http://127.0.0.1:{port}/color"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.addCleanup(lambda: load.poll() is None and load.kill())
        time.sleep(2)  # let wrk's 32 connections be open and busy when the hand-over starts

        gen0 = proxy.process.pid
        gen1 = self.hand_over(proxy, gen0, proxy.process.log_mark())
        self.assertNotEqual(gen1, gen0)
        self.assertEqual(proxy.process.wait(timeout=30), 0)  # drained and gone
        self.assertEqual(proxy.admin("GET", "/readyz").status, 200)  # the new one, same port

        time.sleep(2)
        mark = proxy.process.log_mark()
        gen2 = self.hand_over(proxy, gen1, mark)
        self.assertNotIn(gen2, (gen0, gen1))
        self.assertEqual(reap(gen1), 0)

        out, _ = load.communicate(timeout=WRK_SECONDS + 30)
        self.assertEqual(load.returncode, 0, out)
        self.assertNotIn("Socket errors", out)  # wrk prints the line only when there are some
        self.assertNotIn("Non-2xx", out)
        total = int(re.search(r"(\d+) requests in", out).group(1))
        self.assertGreater(total, 0, out)

        # The last one serves on the same ports, with the rollout as it was.
        self.assertTrue(os.path.exists(f"/proc/{gen2}"))
        self.assertEqual((proxy.port, proxy.admin_port), (port, admin_port))
        self.assertEqual(self.rollout_key(proxy), before)
        self.assertLessEqual(set(proxy.colors(10)), {"blue", "green"})
        self.assertEqual(proxy.op(NAME, "promote").json()["stable"], "green")

    def test_tls_listeners_are_handed_over_too(self):
        from test_tls import CA  # tests/e2e, on the path with the harness
        ca = CA(self.tmp)
        cert, key = ca.issue("site", "localhost", ["localhost"])
        proxy = self.start(binary("canary-proxy"),
                           tls={"listen": "127.0.0.1:0", "certificates": [{"cert": cert,
                                                                            "key": key}]})
        port = int(proxy.process.wait_for_log(
            r"proxy listening on 127\.0\.0\.1:(\d+) \(TLS, \d+ workers?\)").group(1))
        ctx = ssl.create_default_context(cafile=ca.cert)

        def https_color():
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                    s.sendall(b"GET /color HTTP/1.1\r\nHost: localhost\r\n"
                              b"Connection: close\r\n\r\n")
                    data = b""
                    while chunk := s.recv(65536):
                        data += chunk
            return data

        self.assertIn(b" 200 ", https_color().split(b"\r\n", 1)[0])
        old = proxy.process.pid
        new = self.hand_over(proxy, old, proxy.process.log_mark())
        self.assertEqual(proxy.process.wait(timeout=30), 0)
        # The new process serves TLS on the same port, on the handed-over socket (never bound
        # anew: its log says it adopted the listeners).
        self.assertTrue(os.path.exists(f"/proc/{new}"))
        self.assertIn(b" 200 ", https_color().split(b"\r\n", 1)[0])

    def copy_binary(self):
        exe = self.path("canary-proxy-copy")
        shutil.copy2(binary("canary-proxy"), exe)
        return exe

    def replace_with_script(self, exe, text):
        tmp = exe + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, stat.S_IRWXU)
        os.replace(tmp, exe)

    def test_a_new_binary_that_exits_leaves_the_old_one_serving(self):
        exe = self.copy_binary()
        proxy = self.start(exe, workers=1)
        proxy.op(NAME, "upstream", {"upstream": "green"})
        before = self.rollout_key(proxy)
        self.replace_with_script(exe, "#!/bin/sh\nexit 1\n")

        mark = proxy.process.log_mark()
        proxy.process.signal(signal.SIGUSR2)
        proxy.process.wait_for_log(r"upgrade failed: .* exited with status 1; this process keeps "
                                   r"serving", mark=mark)
        self.assertAlive(proxy)
        self.assertEqual(proxy.get("/color").status, 200)
        self.assertEqual(self.rollout_key(proxy), before)
        self.assertEqual(proxy.op(NAME, "weight", {"weight": 30}).status, 200)  # not 503

        # A working binary again: the next SIGUSR2 hands over (nothing was lost the first time).
        shutil.copy2(binary("canary-proxy"), exe + ".new")
        os.replace(exe + ".new", exe)
        new_pid = self.hand_over(proxy, proxy.process.pid, proxy.process.log_mark())
        self.assertEqual(proxy.process.wait(timeout=30), 0)
        self.assertEqual(proxy.status()["weight"], 30)
        self.assertTrue(os.path.exists(f"/proc/{new_pid}"))

    def test_no_writes_while_handing_over_and_everything_back_after_a_failure(self):
        exe = self.copy_binary()
        proxy = self.start(exe, workers=1,
                           steps=[{"setWeight": 20}, {"pause": {"duration": "1s"}}])
        proxy.op(NAME, "upstream", {"upstream": "green"})  # a timed pause of 1 s runs
        # A new binary that never gets ready (exec: the pid the old one waits for is the sleeper).
        self.replace_with_script(exe, "#!/bin/sh\nexec sleep 60\n")
        mark = proxy.process.log_mark()
        proxy.process.signal(signal.SIGUSR2)
        m = proxy.process.wait_for_log(r"SIGUSR2: handing over to pid (\d+)", mark=mark)
        child = int(m.group(1))
        held = self.rollout_key(proxy)
        self.assertEqual(held[:3], ("Paused", 1, 20))

        r = proxy.op(NAME, "weight", {"weight": 30}, expect=None)
        body = self.assertApiError(r, 503)
        self.assertEqual(body["error"], f"upgrading: this process is handing over to pid {child}")
        self.assertEqual(proxy.admin("POST", "/api/v1/config/reload").status, 503)
        self.assertEqual(proxy.get("/color").status, 200)  # the data plane serves on
        # The pause's deadline passes, but the timer writes no state during a hand-over: the
        # status (a read, still answered) stays as it was. Proving an absence takes a wait.
        time.sleep(2.0)
        self.assertEqual(self.rollout_key(proxy), held)

        os.kill(child, signal.SIGKILL)
        proxy.process.wait_for_log(r"upgrade failed: .* killed by signal 9; this process keeps "
                                   r"serving", mark=mark)
        # Timers and changes work again: the overdue pause ends, the rollout completes.
        proxy.wait_status(lambda s: s["phase"] == "Healthy" and s["stable"] == "green",
                          what="the held pause ending after the failed hand-over")
        self.assertEqual(proxy.op(NAME, "undo").status, 200)
        self.assertAlive(proxy)

if __name__ == "__main__":
    unittest.main()
