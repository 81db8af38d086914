#!/usr/bin/env python3
"""make soak: does the proxy's memory level off under long, varied traffic?

Runs, on 127.0.0.1 only: two demo-backends (blue, green) and canary-proxy (2 workers, access log
on to /dev/null, a route sticky on the X-User header, a rollout paused at weight 20), then
ROUNDS rounds of wrk (ROUND_SECONDS each, fresh connections every round) with a Lua script that
cycles USERS distinct X-User ids. During every round a controller thread keeps changing things:
the canary weight (PUT .../weight), a config reload (POST /api/v1/config/reload, the file
rewritten with a new comment each time), a restart of the green backend (kill, start again on
the same port), and it reads /metrics and /api/v1/stats as Prometheus and the dashboard would.
Before the first round it makes 250 weight changes, so that the rollout's event history (the
last 200 events) is full from the start. After each round, with no traffic, it records the
proxy's VmRSS.

Criterion: the first third of the rounds is warm-up. Over the last third, the least-squares
slope of RSS against requests served must stay below --max-slope (KiB per million requests,
default 32); otherwise RSS is still growing and the run fails (exit 1). The curve is printed
either way. Bounded: every process is killed at the end, wrk gets a timeout, the whole run has a
deadline (--deadline, default 15 min). About 10 minutes with the defaults.

  python3 bench/soak.py [--build build] [--rounds 18] [--round-seconds 30] [--users 50000]
"""

import argparse
import json
import os
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROUTE = "soak"


def log(msg):
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} not listening on {port} after {timeout}s")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def api(admin_port, method, path, body=None, timeout=5.0):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{admin_port}{path}", data=data,
                                 method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def malloc_in_use(pid, log_path):
    """glibc's bytes in use (all arenas and mmap) from malloc_stats(), called through gdb: the
    live heap, against which RSS shows what the allocator keeps. None when gdb cannot."""
    size = os.path.getsize(log_path)
    try:
        subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "call (int)malloc_stats()"],
                       capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    with open(log_path, "rb") as f:
        f.seek(size)
        text = f.read().decode("latin-1")
    m = re.search(r"Total \(incl\. mmap\):\s*system bytes\s*=\s*\d+\s*in use bytes\s*=\s*(\d+)",
                  text)
    return int(m.group(1)) // 1024 if m else None


def slope(points):
    """Least-squares slope of [(x, y)]."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in points) / sxx


LUA = """
-- %(users)d distinct sticky users, requests formatted once; each wrk thread starts elsewhere.
local users = %(users)d
local reqs = {}
local i = 0
function setup(thread)
  thread:set("offset", math.random(users))
end
function init(args)
  for u = 1, users do
    reqs[u] = wrk.format("GET", "/color", { ["X-User"] = "user-" .. u })
  end
  i = offset or 0
end
function request()
  i = i %% users + 1
  return reqs[i]
end
"""


def config_text(port, admin_port, blue, green, state, generation):
    return f"""# soak run, generation {generation}
listen: "127.0.0.1:{port}"
workers: 2
admin:
  listen: "127.0.0.1:{admin_port}"
state_file: "{state}"
timeouts: {{ upstream_connect: 1s }}
access_log: {{ enabled: true, path: "/dev/null", format: json }}
upstreams:
  blue:
    endpoints: ["127.0.0.1:{blue}"]
  green:
    endpoints: ["127.0.0.1:{green}"]
    outlier: {{ consecutive_failures: 5, base_ejection: 2s, max_ejected_percent: 100 }}
routes:
  - name: {ROUTE}
    path_prefix: "/"
    upstream: blue
    canary:
      sticky: "header:X-User"
    steps:
      - setWeight: 20
      - pause: {{}}
"""


class Soak:
    def __init__(self, args):
        self.args = args
        self.bin = os.path.abspath(os.path.join(args.build, "bin"))
        self.tmp = tempfile.mkdtemp(prefix="canary-soak-")
        self.procs = {}
        self.lock = threading.Lock()
        self.ports = {k: free_port() for k in ("proxy", "admin", "blue", "green")}
        self.generation = 0
        self.actions = {"weight": 0, "reload": 0, "restart": 0, "failed": 0}
        self.heap = []  # (requests, KiB in use by malloc) with --malloc-stats

    # --- processes
    def start(self, name, argv):
        out = open(os.path.join(self.tmp, f"{name}.log"), "ab")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
        out.close()
        with self.lock:
            self.procs[name] = p
        return p

    def stop(self, name, sig=signal.SIGTERM):
        with self.lock:
            p = self.procs.pop(name, None)
        if p and p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def backend(self, color):
        p = self.start(color, [os.path.join(self.bin, "demo-backend"), "--listen",
                               f"127.0.0.1:{self.ports[color]}", "--color", color])
        wait_port(self.ports[color], p, color)

    def write_config(self):
        self.generation += 1
        path = os.path.join(self.tmp, "proxy.yaml")
        with open(path + ".new", "w") as f:
            f.write(config_text(self.ports["proxy"], self.ports["admin"], self.ports["blue"],
                                self.ports["green"], os.path.join(self.tmp, "state.json"),
                                self.generation))
        os.replace(path + ".new", path)
        return path

    def cleanup(self):
        for name in list(self.procs):
            self.stop(name, signal.SIGKILL if name == "wrk" else signal.SIGTERM)
        if not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # --- the run
    def setup(self):
        for b in ("blue", "green"):
            self.backend(b)
        cfg = self.write_config()
        wrapper = shlex.split(self.args.wrap) if self.args.wrap else []
        p = self.start("proxy", wrapper + [os.path.join(self.bin, "canary-proxy"), "--config",
                                           cfg])
        wait_port(self.ports["proxy"], p, "canary-proxy")
        wait_port(self.ports["admin"], p, "canary-proxy admin")
        st, body = api(self.ports["admin"], "PUT", f"/api/v1/rollouts/{ROUTE}/upstream",
                       {"upstream": "green"})
        if st != 200:
            raise RuntimeError(f"starting the rollout: {st} {body[:200]!r}")
        # Fill what is bounded by count rather than by time before measuring: the rollout's
        # event history keeps its last 200 events (and the state file and API answers carry
        # them), so a run that is still filling it would count that as growth.
        for i in range(self.args.prefill_events):
            st, body = api(self.ports["admin"], "PUT", f"/api/v1/rollouts/{ROUTE}/weight",
                           {"weight": 20 + i % 2})
            if st != 200:
                raise RuntimeError(f"weight change: {st} {body[:200]!r}")
        with open(os.path.join(self.tmp, "soak.lua"), "w") as f:
            f.write(LUA % {"users": self.args.users})

    def controller(self, stop):
        """Weight changes, reloads and green restarts, in turn, until `stop` is set."""
        rng = random.Random(7)
        kinds = ["weight", "reload", "weight", "restart"]
        # /metrics and /api/v1/stats are read as Prometheus and the dashboard would.
        k = 0
        while not stop.wait(self.args.action_interval):
            try:
                api(self.ports["admin"], "GET", "/metrics")
                api(self.ports["admin"], "GET", "/api/v1/stats")
            except OSError as e:
                log(f"scrape failed: {e}")
            kind = kinds[k % len(kinds)]
            k += 1
            try:
                if kind == "weight":
                    st, _ = api(self.ports["admin"], "PUT", f"/api/v1/rollouts/{ROUTE}/weight",
                                {"weight": rng.choice([5, 20, 35, 50, 65, 80])})
                elif kind == "reload":
                    self.write_config()
                    st, _ = api(self.ports["admin"], "POST", "/api/v1/config/reload")
                else:
                    self.stop("green", signal.SIGKILL)
                    time.sleep(0.3)  # a dead backend for a moment: refused connects, ejection
                    self.backend("green")
                    st = 200
                self.actions[kind if st == 200 else "failed"] += 1
            except (OSError, RuntimeError) as e:
                log(f"{kind} failed: {e}")
                self.actions["failed"] += 1

    def wrk_round(self):
        a = self.args
        argv = ["wrk", f"-t{a.threads}", f"-c{a.connections}", f"-d{a.round_seconds}s",
                "--timeout", "5s", "-s", os.path.join(self.tmp, "soak.lua"),
                f"http://127.0.0.1:{self.ports['proxy']}/"]
        p = self.start("wrk", argv)
        try:
            p.wait(a.round_seconds + 30)
        except subprocess.TimeoutExpired:
            raise RuntimeError("wrk did not finish in time")
        finally:
            self.stop("wrk", signal.SIGKILL)
        with open(os.path.join(self.tmp, "wrk.log")) as f:
            text = f.read()
        open(os.path.join(self.tmp, "wrk.log"), "w").close()
        m = re.search(r"(\d+) requests in", text)
        if not m:
            raise RuntimeError(f"no request count in wrk's output:\n{text}")
        return int(m.group(1))

    def run(self):
        a = self.args
        deadline = time.monotonic() + a.deadline
        self.setup()
        pid = self.procs["proxy"].pid
        curve = [(0, rss_kib(pid))]
        log(f"proxy pid {pid}, RSS at start {curve[0][1]} KiB; {a.rounds} rounds of "
            f"{a.round_seconds}s, {a.connections} connections, {a.users} sticky users")
        total = 0
        for r in range(1, a.rounds + 1):
            if time.monotonic() + a.round_seconds + 30 > deadline:
                raise RuntimeError(f"deadline ({a.deadline}s) reached before round {r}")
            stop = threading.Event()
            ctl = threading.Thread(target=self.controller, args=(stop,), daemon=True)
            ctl.start()
            try:
                n = self.wrk_round()
            finally:
                stop.set()
                ctl.join(15)
            if self.procs["proxy"].poll() is not None:
                raise RuntimeError(f"canary-proxy exited ({self.procs['proxy'].returncode})")
            if "green" not in self.procs:
                self.backend("green")
            time.sleep(1.5)  # let the 1 s flush and the sweep run with no traffic
            total += n
            curve.append((total, rss_kib(pid)))
            heap = ""
            if a.malloc_stats:
                kib = malloc_in_use(pid, os.path.join(self.tmp, "proxy.log"))
                if kib is not None:
                    self.heap.append((total, kib))
                    heap = f", malloc in use {kib} KiB"
            log(f"round {r:2}: {n:8} requests, total {total:9}, RSS {curve[-1][1]} KiB{heap}")
        return curve, total

    def verdict(self, curve):
        a = self.args
        rounds = curve[1:]
        third = max(2, len(rounds) // 3)
        last = rounds[-third:]
        mid = rounds[-2 * third:-third] if len(rounds) >= 2 * third else rounds[:third]
        s = slope([(x / 1e6, y) for x, y in last])  # KiB per million requests
        print("\nRSS curve (KiB after each round, no traffic):")
        lo = min(y for _, y in curve)
        hi = max(y for _, y in curve)
        for i, (x, y) in enumerate(curve):
            bar = "#" * (1 + int(50 * (y - lo) / max(1, hi - lo)))
            print(f"  round {i:2}  {x / 1e6:7.2f} M req  {y:7} KiB  {bar}")
        print(f"actions: {self.actions}")
        print(f"warm-up: rounds 1..{len(rounds) - third}; last third: rounds "
              f"{len(rounds) - third + 1}..{len(rounds)}")
        print(f"slope over the last third: {s:+.1f} KiB per million requests "
              f"(limit {a.max_slope:g}); middle third max {max(y for _, y in mid)} KiB, "
              f"last third max {max(y for _, y in last)} KiB")
        if len(self.heap) >= 2 * third:
            hs = slope([(x / 1e6, y) for x, y in self.heap[-third:]])
            print(f"malloc in use over the last third: {hs:+.1f} KiB per million requests "
                  f"(growth here is live memory; growth in RSS only is the allocator's)")
        if s > a.max_slope:
            print("FAIL: RSS still grows after warm-up")
            return 1
        print("OK: RSS levels off after warm-up")
        return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--rounds", type=int, default=18)
    ap.add_argument("--round-seconds", type=int, default=30)
    ap.add_argument("--users", type=int, default=50000)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--action-interval", type=float, default=2.0,
                    help="seconds between two weight changes / reloads / restarts")
    ap.add_argument("--max-slope", type=float, default=32.0,
                    help="KiB per million requests over the last third")
    ap.add_argument("--deadline", type=int, default=900, help="whole run, seconds")
    ap.add_argument("--prefill-events", type=int, default=250,
                    help="weight changes before the first round (fills the event history)")
    ap.add_argument("--malloc-stats", action="store_true",
                    help="after each round, also glibc's bytes in use (malloc_stats() via gdb)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--wrap", default="",
                    help="command to run the proxy under, e.g. 'heaptrack -o /tmp/soak' (the "
                         "RSS is then the wrapper's process: for investigation only)")
    args = ap.parse_args()
    if args.rounds < 6:
        ap.error("--rounds must be at least 6 (thirds of at least two rounds)")
    if not shutil.which("wrk"):
        sys.exit("soak: wrk missing (apt-get install wrk, or make bench-deps)")
    soak = Soak(args)
    try:
        curve, _ = soak.run()
        rc = soak.verdict(curve)
    except RuntimeError as e:
        log(f"error: {e}; logs in {soak.tmp}")
        args.keep = True
        rc = 2
    finally:
        soak.cleanup()
    sys.exit(rc)


if __name__ == "__main__":
    main()
