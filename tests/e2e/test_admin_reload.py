"""Config reloads run off the control thread: while a reload waits for a DNS server that does not
answer, /healthz, the rollout API and a promote still answer, and the reload answers when the
load ends (422 here, the name does not resolve). Concurrent reloads share the next load.

The proxy runs in a private mount namespace (`unshare --mount`) whose /etc/resolv.conf is a
bind mount pointing at a "blackhole" DNS server of the test on 127.0.0.1:53 (UDP): it reads
queries and answers none until the test releases it, then answers NXDOMAIN, so the test never
waits for the resolver's 30 s timeout."""

import copy
import json
import os
import random
import socket
import subprocess
import threading
import unittest

import harness
from harness import DEADLINE, E2ETestCase, make_config, route

NAME = "canary-demo"
STEPS = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]
SLOW_ENDPOINT = "slow.invalid:9001"


class BlackholeDNS:
    """UDP DNS server on a loopback address, port 53: records every query, answers none until
    release(); then answers each (held and new) with NXDOMAIN (RFC 1035 §4.1.1, RCODE 3)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # 127.0.0.1:53 when free; otherwise another address of 127.0.0.0/8 (loopback too).
        candidates = ["127.0.0.1"] + [f"127.53.{random.randint(0, 255)}.{random.randint(1, 254)}"
                                      for _ in range(5)]
        for addr in candidates:
            try:
                self.sock.bind((addr, 53))
                self.address = addr
                break
            except OSError:
                continue
        else:
            self.sock.close()
            raise unittest.SkipTest("cannot bind a loopback UDP port 53")
        self.cond = threading.Condition()
        self.held = []  # (query, peer) not answered
        self.queries = 0
        self.released = False
        self.closed = False
        # recvfrom is not woken by a close from another thread: wake up now and then to see.
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._run, name="blackhole-dns", daemon=True)
        self.thread.start()

    @staticmethod
    def nxdomain(query):
        if len(query) < 12:
            return None
        flags = int.from_bytes(query[2:4], "big")
        i = 12
        while i < len(query) and query[i] != 0:  # QNAME labels
            i += 1 + query[i]
        question = query[12:i + 5]  # QNAME, its zero byte, QTYPE, QCLASS
        out_flags = 0x8000 | (flags & 0x7900) | 0x0080 | 3  # QR, opcode, RD; RA; NXDOMAIN
        return (query[:2] + out_flags.to_bytes(2, "big") + (1).to_bytes(2, "big") +
                bytes(6) + question)

    def _run(self):
        while not self.closed:
            try:
                query, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.cond:
                self.queries += 1
                self.cond.notify_all()
                if not self.released:
                    self.held.append((query, peer))
                    continue
            self._answer(query, peer)

    def _answer(self, query, peer):
        reply = self.nxdomain(query)
        if reply:
            try:
                self.sock.sendto(reply, peer)
            except OSError:
                pass

    def wait_queries(self, n):
        with self.cond:
            if not self.cond.wait_for(lambda: self.queries >= n, DEADLINE):
                raise AssertionError(f"the DNS server got {self.queries} queries, not {n}")

    def release(self):
        with self.cond:
            self.released = True
            held, self.held = self.held, []
        for query, peer in held:
            self._answer(query, peer)

    def close(self):
        self.release()
        self.closed = True
        self.thread.join(DEADLINE)
        self.sock.close()


def unshare_works():
    try:
        return subprocess.run(["unshare", "--mount", "true"], capture_output=True,
                              timeout=DEADLINE).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class NamespacedProxy(harness.Proxy):
    """The proxy in a private mount namespace with `resolv_conf` bound over /etc/resolv.conf
    (util-linux unshare makes the namespace's mounts private: nothing leaks to the host). The
    shell execs the proxy, so the pid is the proxy's and the namespace ends with it."""

    def __init__(self, workdir, config, resolv_conf):
        super().__init__(workdir, config)
        self.resolv_conf = resolv_conf

    def launch(self):
        script = 'mount --bind "$0" /etc/resolv.conf && exec "$@"'
        return harness.Process(["unshare", "--mount", "sh", "-c", script, self.resolv_conf,
                                harness.binary("canary-proxy"), "--config", self.config_path])


class BackgroundCall(threading.Thread):
    """One admin call on a thread of its own; `reply` once it answered."""

    def __init__(self, port, method, path):
        super().__init__(daemon=True)
        self.port, self.method, self.path = port, method, path
        self.reply = None
        self.error = None
        self.start()

    def run(self):
        try:
            # Longer than the resolver's timeout: the reply is what is tested, not its delay.
            self.reply = harness.http_call(self.port, self.method, self.path, timeout=60)
        except Exception as e:  # reported by the test
            self.error = e


class ReloadOffTheControlThreadTest(E2ETestCase):

    def setUp(self):
        super().setUp()
        if not unshare_works():
            self.skipTest("unshare --mount is not permitted here")
        self.dns = BlackholeDNS()
        self.addCleanup(self.dns.close)
        self.resolv = self.write("resolv.conf", f"nameserver {self.dns.address}\n"
                                                "options timeout:30 attempts:1\n")

    def test_control_api_answers_while_a_reload_waits_for_dns(self):
        blue, green = self.blue_green()
        cfg = make_config({"blue": blue.endpoint, "green": green.endpoint},
                          [route(steps=STEPS)])
        proxy = NamespacedProxy(self.tmp, cfg, self.resolv)
        self.addCleanup(self._dump_logs_on_failure, proxy)
        self.addCleanup(proxy.stop)
        proxy.start()
        s = proxy.op(NAME, "upstream", {"upstream": "green"}).json()
        self.assertEqual((s["phase"], s["step"]), ("Paused", 1), s)

        # The next config names an endpoint by a host name the blackhole will not resolve.
        slow = copy.deepcopy(proxy.config)
        slow["upstreams"]["green"]["endpoints"].append(SLOW_ENDPOINT)
        proxy.write_config(slow)
        first = BackgroundCall(proxy.admin_port, "POST", "/api/v1/config/reload")
        self.dns.wait_queries(1)  # the load now waits in getaddrinfo

        # A second reload while the first is pending: it waits for the next load.
        second = BackgroundCall(proxy.admin_port, "POST", "/api/v1/config/reload")
        # The control thread answers meanwhile (a blocked one would leave these to time out).
        self.assertEqual(proxy.admin("GET", "/healthz").status, 200)
        r = proxy.admin("GET", "/api/v1/rollouts")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["rollouts"][0]["step"], 1)
        s = proxy.op(NAME, "promote").json()
        self.assertEqual((s["phase"], s["step"], s["weight"]), ("Paused", 3, 50), s)
        self.assertEqual(proxy.get("/color").status, 200)
        self.assertIsNone(first.reply, "the reload must still be waiting for the DNS server")
        self.assertIsNone(first.error, first.error)

        # Let the DNS server answer: both reloads end with the resolve error, old config kept.
        self.dns.release()
        for call in (first, second):
            call.join(DEADLINE)
            self.assertIsNone(call.error, call.error)
            self.assertIsNotNone(call.reply, "the reload did not answer")
            body = self.assertApiError(call.reply, 422)
            self.assertTrue(any("slow.invalid" in e for e in body["errors"]), body)
        self.assertGreaterEqual(self.dns.queries, 2, "the second reload ran a load of its own")
        metrics = proxy.admin("GET", "/metrics").text
        self.assertIn('canary_proxy_config_reloads_total{result="failure"} 2', metrics)
        self.assertEqual(proxy.status()["step"], 3, "the promote made meanwhile is kept")

        # A good file reloads as before.
        proxy.write_config(cfg)
        r = proxy.admin("POST", "/api/v1/config/reload")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["result"], "ok")

    def test_sighup_reload_does_not_block_the_control_thread(self):
        blue, green = self.blue_green()
        cfg = make_config({"blue": blue.endpoint, "green": green.endpoint},
                          [route(steps=STEPS)])
        proxy = NamespacedProxy(self.tmp, cfg, self.resolv)
        self.addCleanup(self._dump_logs_on_failure, proxy)
        self.addCleanup(proxy.stop)
        proxy.start()
        slow = copy.deepcopy(cfg)
        slow["upstreams"]["green"]["endpoints"].append(SLOW_ENDPOINT)
        slow["routes"][0]["upstream"] = "green"
        proxy.write_config(slow)
        mark = proxy.process.log_mark()
        proxy.sighup()
        self.dns.wait_queries(1)
        self.assertEqual(proxy.admin("GET", "/healthz").status, 200)
        self.assertEqual(proxy.status()["phase"], "Healthy")
        self.dns.release()
        proxy.process.wait_for_log(r"SIGHUP: reload refused", mark=mark)
        self.assertEqual(proxy.status()["phase"], "Healthy", "the refused config is not applied")


if __name__ == "__main__":
    unittest.main()
