"""The admin listener under a small descriptor limit (`ulimit -n 64`): watch streams and admin
connections are capped (503 with a JSON error naming the limit, then close), failed accepts back
off instead of spinning, and /healthz, the data plane and a timed pause keep working."""

import http.client
import json
import os
import resource
import selectors
import socket
import subprocess
import time
import unittest

from hardening import DEADLINE, HardeningTestCase, make_config, route

import harness

NOFILE = 64
WATCHERS = 70  # more watch streams than the proxy has descriptors
# The idle window of the spin check, and the CPU the proxy may use in it: a control thread
# spinning on accept uses all of it.
IDLE_WINDOW_S = 2.0
IDLE_CPU_MAX_S = 0.3


def cpu_seconds(pid):
    """utime + stime of a process, in seconds (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class LimitedProcess(harness.Process):
    """harness.Process with RLIMIT_NOFILE set in the child before exec."""

    def __init__(self, argv, nofile):
        def limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True,
                                     preexec_fn=limit)
        self.stdout = harness.LineReader(self.proc.stdout, "stdout:canary-proxy")
        self.stderr = harness.LineReader(self.proc.stderr, "stderr:canary-proxy")


class LimitedProxy(harness.Proxy):
    def __init__(self, workdir, config, nofile):
        super().__init__(workdir, config)
        self.nofile = nofile

    def launch(self):
        return LimitedProcess([harness.binary("canary-proxy"), "--config", self.config_path],
                              self.nofile)


def read_heads(socks, timeout):
    """For each socket: (status, body bytes so far) once its head arrived, or None when the
    deadline passed first. Reads all of them at once (a hanging one must not delay the rest)."""
    sel = selectors.DefaultSelector()
    bufs = {}
    for s in socks:
        s.setblocking(False)
        bufs[s] = b""
        sel.register(s, selectors.EVENT_READ)
    done = {}
    deadline = time.monotonic() + timeout
    while len(done) < len(socks) and time.monotonic() < deadline:
        for key, _ in sel.select(max(0.0, deadline - time.monotonic())):
            s = key.fileobj
            try:
                b = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except ConnectionResetError:
                b = b""
            bufs[s] += b
            if b"\r\n\r\n" in bufs[s] or not b:
                sel.unregister(s)
                head, _, body = bufs[s].partition(b"\r\n\r\n")
                status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.1 ") else 0
                done[s] = (status, body)
    sel.close()
    for s in socks:
        s.setblocking(True)
    return [done.get(s) for s in socks]


def read_rest(sock, body, timeout):
    """Reads until EOF; the whole body."""
    sock.settimeout(timeout)
    while True:
        b = sock.recv(65536)
        if not b:
            return body
        body += b


class AdminUnderDescriptorLimitTest(HardeningTestCase):

    def test_watch_flood_under_ulimit_64(self):
        blue, green = self.blue_green()
        steps = [{"setWeight": 20}, {"pause": {"duration": "5s"}}, {"setWeight": 50},
                 {"pause": {}}]
        cfg = make_config({"blue": blue.endpoint, "green": green.endpoint},
                          [route(steps=steps)])
        proxy = LimitedProxy(self.tmp, harness.concrete_ports(cfg), NOFILE)
        self.addCleanup(self._dump_logs_on_failure, proxy)
        self.addCleanup(proxy.stop)
        proxy.start()
        # A timed pause that ends while the watchers are open.
        s = proxy.op("canary-demo", "upstream", {"upstream": "green"}).json()
        self.assertEqual((s["phase"], s["step"]), ("Paused", 1), s)

        socks = []
        self.addCleanup(lambda: [x.close() for x in socks])
        for _ in range(WATCHERS):
            c = socket.create_connection(("127.0.0.1", proxy.admin_port), timeout=DEADLINE)
            socks.append(c)
            c.sendall(f"GET /api/v1/watch HTTP/1.1\r\nHost: 127.0.0.1:{proxy.admin_port}\r\n"
                      f"Accept: text/event-stream\r\n\r\n".encode())
        heads = read_heads(socks, DEADLINE)
        hanging = sum(1 for h in heads if h is None)
        self.assertEqual(hanging, 0, f"{hanging} of {WATCHERS} watch requests got no answer")
        streams = [(c, h) for c, h in zip(socks, heads) if h[0] == 200]
        refused = [(c, h) for c, h in zip(socks, heads) if h[0] == 503]
        self.assertGreater(len(streams), 0)
        self.assertEqual(len(streams) + len(refused), WATCHERS,
                         f"statuses: {sorted(h[0] for h in heads)}")
        for c, (_, body) in refused:
            err = json.loads(read_rest(c, body, DEADLINE))
            self.assertRegex(err["error"], r"too many (watch streams|admin connections): "
                                           r"the limit is \d+", err)
            self.assertEqual(err["errors"], [])

        # The control API and the data plane still answer with the streams open.
        self.assertEqual(proxy.admin("GET", "/healthz").status, 200)
        self.assertEqual(proxy.admin("GET", "/api/v1/rollouts").status, 200)
        self.assertEqual(proxy.get("/color").status, 200)
        still_paused = proxy.status()
        self.assertEqual(still_paused["step"], 1,
                         "the timed pause must still run here (make it longer if this fails)")

        # Nothing spins: idle, the proxy uses almost no CPU.
        before = cpu_seconds(proxy.process.pid)
        time.sleep(IDLE_WINDOW_S)  # the measurement window itself, not a wait for a condition
        used = cpu_seconds(proxy.process.pid) - before
        self.assertLess(used, IDLE_CPU_MAX_S,
                        f"the proxy used {used:.2f} s of CPU in {IDLE_WINDOW_S} s of idling")

        # The timed pause ends on its own: step 3, written to the state file, told to watchers.
        s = proxy.wait_status(lambda s: s["step"] == 3, timeout=DEADLINE,
                              what="the end of the timed pause")
        self.assertEqual((s["phase"], s["weight"]), ("Paused", 50), s)
        with open(proxy.state_path) as f:
            self.assertIn('"step":3', f.read().replace(" ", ""))
        sse = streams[0][0]
        sse.settimeout(DEADLINE)
        seen = streams[0][1][1]
        deadline = time.monotonic() + DEADLINE
        while b'"step":3' not in seen and time.monotonic() < deadline:
            b = sse.recv(65536)
            if not b:
                break
            seen += b
        self.assertIn(b'"step":3', seen, "a watch stream got the status of step 3")
        self.assertTrue(proxy.process.alive())

    def test_accept_backs_off_when_descriptors_run_out(self):
        """The data plane takes every descriptor; the admin listener's accept then fails with
        EMFILE. It must wait between tries, not spin, and answer once descriptors are back."""
        blue = self.start_backend("blue")
        # A client that sends nothing keeps its descriptor for client_header.
        cfg = make_config({"blue": blue.endpoint}, [route(steps=[])],
                          timeouts={"client_header": "60s"})
        proxy = LimitedProxy(self.tmp, harness.concrete_ports(cfg), NOFILE)
        self.addCleanup(self._dump_logs_on_failure, proxy)
        self.addCleanup(proxy.stop)
        proxy.start()
        data = []
        self.addCleanup(lambda: [x.close() for x in data])
        mark = proxy.process.log_mark()
        for _ in range(NOFILE + 10):  # the kernel's backlog holds those the proxy cannot take
            data.append(socket.create_connection(("127.0.0.1", proxy.port), timeout=DEADLINE))
        proxy.process.wait_for_log(r"worker \d+: accept: Too many open files", mark=mark)
        admin = []
        self.addCleanup(lambda: [x.close() for x in admin])
        for _ in range(3):
            c = socket.create_connection(("127.0.0.1", proxy.admin_port), timeout=DEADLINE)
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            admin.append(c)

        before = cpu_seconds(proxy.process.pid)
        time.sleep(IDLE_WINDOW_S)  # the measurement window itself, not a wait for a condition
        used = cpu_seconds(proxy.process.pid) - before
        self.assertLess(used, IDLE_CPU_MAX_S,
                        f"the proxy used {used:.2f} s of CPU in {IDLE_WINDOW_S} s out of "
                        f"descriptors")

        for c in data:
            c.close()
        for c in admin:
            raw = read_rest(c, b"", DEADLINE)
            self.assertTrue(raw.startswith(b"HTTP/1.1 200 "), raw[:200])
        self.assertEqual(proxy.admin("GET", "/healthz").status, 200)


if __name__ == "__main__":
    unittest.main()
