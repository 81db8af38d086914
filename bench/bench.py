#!/usr/bin/env python3
"""Side-by-side benchmark: canary-proxy vs nginx vs HAProxy on loopback (see bench/README.md).

`make bench` runs `python3 bench/bench.py --build build`. Standard library only.

Layout: the two backends (one nginx, ports "blue" and "green") and the load generator (wrk, or
this script for the idle-connection scenario) run on the load CPU; each proxy runs with one
worker pinned to the proxy CPU. All three proxies are started once and stay up; the runs are
interleaved (for each round, for each scenario: canary-proxy, nginx, HAProxy), so slow drifts of a
noisy machine hit all three alike. Medians over the rounds are reported; each ratio to nginx is
the median of the per-round ratios (paired with the nginx run of the same round and scenario).

Proxy CPU per request = (utime + stime of the proxy's processes, from /proc/PID/stat, after the
wrk run minus before) / requests wrk completed. For nginx the master and its worker are summed.

Every process this script starts runs in its own session and is stopped by its own process id
(also on Ctrl-C and on errors); nothing else on the machine is touched. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import errno
import http.client
import json
import os
import platform
import re
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
CONF_DIR = BENCH_DIR / "conf"
LUA_DIR = BENCH_DIR / "lua"
CLK_TCK = os.sysconf("SC_CLK_TCK")
ONE_MB = 1 << 20


# --------------------------------------------------------------------------------------------
# Scenarios


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    path: str = "/"
    headers: tuple[str, ...] = ()
    script: str | None = None  # file in bench/lua, run before report.lua
    unit: str = "req/s"  # "MB/s": throughput is response bytes per second
    tls: bool = False  # against the TLS listener (canary-proxy and nginx, same certificate)
    h2: bool = False  # HTTP/2 (ALPN h2) with h2load instead of wrk


SCENARIOS = {
    "a": Scenario("a", "keep-alive, small responses"),
    "b": Scenario("b", "keep-alive, `X-Canary: always`", headers=("X-Canary: always",)),
    "c": Scenario("c", "sticky on `X-User` (1000 users)", path="/sticky/item",
                  script="sticky.lua"),
    "d": Scenario("d", "new connection per request", script="close.lua"),
    "e": Scenario("e", "1 MB responses", path="/1m.bin", unit="MB/s"),
    "h": Scenario("h", "TLS 1.3, keep-alive", tls=True),
    "i": Scenario("i", "TLS 1.3, new handshake per request", script="close.lua", tls=True),
    "k": Scenario("k", "HTTP/2 over TLS (h2load, 10 streams per connection)", tls=True, h2=True),
}
IDLE_SCENARIO = "f"
MANY_ROUTES_SCENARIO = "g"  # canary-proxy alone: 10,000 host routes (start, reload, first/last)
TUNNEL_SCENARIO = "j"  # canary-proxy against a direct connection: bench/tunnel_bench.py
FLEET_SCENARIO = "l"  # 3 replicas on etcd: a change's delay to every one, bench/fleet_delay.py
ALL_SCENARIOS = "abcdefghijkl"
TLS_PROXIES = ("canary", "nginx")  # the TLS scenarios compare these two (HAProxy: not set up)
# Mozilla "intermediate" TLS 1.2 suites: canary-proxy's list (tls/context.cpp), given to nginx
# too. Both negotiate TLS 1.3 with wrk, where the suites are OpenSSL's defaults on both sides.
TLS12_CIPHERS = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                 "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                 "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305")


def make_certificate(tmp: Path) -> tuple[Path, Path]:
    """A self-signed EC P-256 certificate for 127.0.0.1 (wrk does not verify it), shared by the
    proxies of the TLS scenarios so that their handshakes cost the same."""
    d = tmp / "tls"
    d.mkdir(exist_ok=True)
    cert, key = d / "cert.pem", d / "key.pem"
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out",
                        str(cert), "-days", "2", "-subj", "/CN=127.0.0.1"],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise BenchError(f"openssl req failed:\n{r.stderr}")
    os.chmod(key, 0o644)  # nginx reads it as root anyway; the workers never do
    return cert, key


PROXY_NAMES = {"canary": "canary-proxy", "canary_an": "canary-proxy, analysis on",
               "nginx": "nginx", "haproxy": "HAProxy"}


class BenchError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Processes: everything started here is recorded and stopped by its own id.


def proc_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat: identifies a process across pid reuse."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return int(rest[19])
    except (OSError, IndexError, ValueError):
        return None


def proc_children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        pass
    kids = []  # kernels without /proc/PID/task/TID/children: scan the parents
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        kids.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return kids


class Processes:
    """The processes this run started. Each runs in a new session (its own process group, so a
    Ctrl-C at the terminal reaches only this script, which then stops them in order)."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.children: list[tuple[int, int]] = []  # (pid, start time) of known descendants

    def start(self, name: str, argv: list[str], cpu: int | None, log_path: Path,
              cwd: Path | None = None) -> subprocess.Popen:
        if cpu is not None:
            argv = ["taskset", "-c", str(cpu)] + argv  # taskset execs: the pid is the program's
        with open(log_path, "ab") as out:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True)
        self.procs.append((name, p))
        return p

    def remember_children(self, p: subprocess.Popen) -> list[int]:
        kids = proc_children(p.pid)
        for k in kids:
            st = proc_start_time(k)
            if st is not None and (k, st) not in self.children:
                self.children.append((k, st))
        return kids

    def stop(self, p: subprocess.Popen, timeout: float = 5.0) -> None:
        if p.poll() is None:
            # Not reaped yet, so p.pid (and its process group, created by start_new_session) is
            # still ours.
            self.remember_children(p)
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(5)
        self.procs = [(n, q) for n, q in self.procs if q is not p]

    def stop_all(self) -> None:
        for _, p in reversed(list(self.procs)):
            try:
                self.stop(p)
            except Exception as e:  # keep stopping the others
                log(f"warning: could not stop pid {p.pid}: {e}")
        # Descendants that outlived their parent (e.g. an nginx worker whose master crashed):
        # only those whose start time still matches, so a reused pid is never signalled.
        for pid, st in self.children:
            if proc_start_time(pid) == st:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.children.clear()


# --------------------------------------------------------------------------------------------
# Small helpers


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_port(port: int, proc: subprocess.Popen, what: str, log_path: Path,
              timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with code {proc.returncode} at start:\n"
                             + tail(log_path))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"{what} does not listen on 127.0.0.1:{port} after {timeout:.0f}s:\n"
                     + tail(log_path))


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "  (no log)"
    return "\n".join("  | " + line for line in text[-lines:]) or "  (empty log)"


def render(template: str, dest: Path, values: dict[str, object]) -> Path:
    text = (CONF_DIR / template).read_text()
    for k, v in values.items():
        text = text.replace(f"@{k}@", str(v))
    # Placeholders in comments stay unfilled on purpose; drop those lines' check.
    text_no_comments = re.sub(r"(?m)^\s*#.*$", "", text)
    left = re.findall(r"@[A-Z_]+@", text_no_comments)
    if left:
        raise BenchError(f"{template}: unfilled placeholders {sorted(set(left))}")
    dest.write_text(text)
    return dest


def cpu_ticks(pids: list[int]) -> int | None:
    """utime + stime of the processes, or None when one is gone (crashed during the run)."""
    total = 0
    try:
        for pid in pids:
            with open(f"/proc/{pid}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
            total += int(rest[11]) + int(rest[12])  # utime, stime (fields 14, 15)
    except (OSError, IndexError, ValueError):
        return None
    return total


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def http_request(port: int, method: str, path: str, body: bytes | None = None,
                 headers: dict[str, str] | None = None,
                 conn: http.client.HTTPConnection | None = None,
                 timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    own = conn is None
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        h = dict(headers or {})
        if body is not None:
            h.setdefault("Content-Type", "application/json")
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        if own:
            c.close()


def first_line(argv: list[str]) -> str:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        out = (r.stdout + r.stderr).strip().splitlines()
        return out[0].strip() if out else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "?"


# --------------------------------------------------------------------------------------------
# The proxies under test


class Proxy:
    key = ""
    name = ""

    def __init__(self, procs: Processes, tmp: Path, cpu: int | None, ports: dict[str, int],
                 limits: dict[str, int]):
        self.procs = procs
        self.limits = limits  # NOFILE, MAXCONN, WORKER_CONNECTIONS for the config templates
        self.dir = tmp / self.key
        self.dir.mkdir()
        self.cpu = cpu
        self.ports = ports
        self.port = ports[self.key]
        self.tls_port = ports.get(self.key + "_tls")  # set when a TLS scenario runs
        self.log_path = self.dir / f"{self.key}.log"
        self.proc: subprocess.Popen | None = None
        self.crashes: list[str] = []

    def argv(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Write the config (and check it) before the first start."""

    def after_start(self) -> None:
        pass

    def start(self) -> None:
        self.proc = self.procs.start(self.name, self.argv(), self.cpu, self.log_path,
                                     cwd=self.dir)
        wait_port(self.port, self.proc, self.name, self.log_path)
        self.after_start()

    def pids(self) -> list[int]:
        assert self.proc is not None
        return [self.proc.pid]

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ensure_running(self, context: str) -> None:
        """A proxy that died is recorded (a crash is a finding) and started again."""
        if self.alive():
            return
        code = self.proc.returncode if self.proc else None
        msg = f"{self.name} died (exit code {code}) before {context}"
        log("!! " + msg + "\n" + tail(self.log_path))
        self.crashes.append(msg)
        if self.proc is not None:
            self.procs.stop(self.proc)
        self.start()

    def stop(self) -> None:
        if self.proc is not None:
            self.procs.stop(self.proc)


class CanaryProxy(Proxy):
    key = "canary"
    name = "canary-proxy"
    routes = ("bench", "bench-sticky")
    template = "canary-proxy.yaml"

    def __init__(self, binary: Path, *args):
        super().__init__(*args)
        self.binary = binary
        self.conf = self.dir / "canary-proxy.yaml"

    def prepare(self) -> None:
        render(self.template, self.conf, {
            "PORT": self.port, "ADMIN_PORT": self.ports[self.key + "_admin"], "TMP": self.dir,
            "BLUE_PORT": self.ports["blue"], "GREEN_PORT": self.ports["green"], **self.limits})
        if self.tls_port:
            with open(self.conf, "a") as f:
                f.write(f'\ntls:\n  listen: "127.0.0.1:{self.tls_port}"\n  certificates:\n'
                        f'    - {{ cert: "{self.limits["TLS_CERT"]}", '
                        f'key: "{self.limits["TLS_KEY"]}" }}\n')
        r = subprocess.run([str(self.binary), "--config", str(self.conf), "--check"],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise BenchError(f"canary-proxy --check failed:\n{r.stdout}{r.stderr}")

    def argv(self) -> list[str]:
        return [str(self.binary), "--config", str(self.conf)]

    def after_start(self) -> None:
        admin = self.ports[self.key + "_admin"]
        wait_port(admin, self.proc, f"{self.name} admin listener", self.log_path)
        # Start the rollout blue -> green: step 0 sets weight 20, step 1 pauses until promoted.
        # On a restart the state file already says so, and PUT of the current canary is a no-op.
        for route in self.routes:
            status, _, body = http_request(admin, "PUT", f"/api/v1/rollouts/{route}/upstream",
                                           body=b'{"upstream":"green"}')
            if status != 200:
                raise BenchError(f"PUT /api/v1/rollouts/{route}/upstream -> {status}: "
                                 f"{body[:300]!r}")
        self.verify_rollout()

    def rollout_status(self, route: str) -> dict:
        status, _, body = http_request(self.ports[self.key + "_admin"], "GET",
                                       f"/api/v1/rollouts/{route}")
        if status != 200:
            raise BenchError(f"GET /api/v1/rollouts/{route} -> {status}: {body[:300]!r}")
        return json.loads(body)

    def verify_rollout(self) -> None:
        deadline = time.monotonic() + 5
        while True:
            bad = []
            for route in self.routes:
                st = self.rollout_status(route)
                if (st.get("phase") != "Paused" or st.get("weight") != 20
                        or st.get("actual_weight") != 20 or st.get("canary") != "green"
                        or st.get("stable") != "blue"):
                    bad.append(f"{route}: " + json.dumps(
                        {k: st.get(k) for k in ("phase", "stable", "canary", "weight",
                                                "actual_weight", "step", "message")}))
            if not bad:
                return
            if time.monotonic() > deadline:
                raise BenchError("canary-proxy rollout is not Paused at weight 20 (blue -> "
                                 "green):\n  " + "\n  ".join(bad))
            time.sleep(0.1)

    def weight_change_latency(self, samples: int = 20) -> list[float]:
        """Milliseconds from the weight API call's answer to the first request routed by the
        new weight (keep-alive client, requests back to back). Leaves the weight at 20."""
        admin = self.ports[self.key + "_admin"]
        out: list[float] = []
        client = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            for i in range(samples):
                target, color = (100, b"green") if i % 2 == 0 else (0, b"blue")
                st, _, body = http_request(admin, "PUT", "/api/v1/rollouts/bench/weight",
                                           body=b'{"weight": %d}' % target)
                if st != 200:
                    raise BenchError(f"PUT weight -> {st}: {body[:200]!r}")
                t0 = time.monotonic()
                for _ in range(10000):
                    _, _, got = http_request(self.port, "GET", "/", conn=client)
                    if got.strip() == color:
                        break
                else:
                    raise BenchError("weight change never reached routing")
                out.append((time.monotonic() - t0) * 1000)
        finally:
            client.close()
            http_request(admin, "PUT", "/api/v1/rollouts/bench/weight", body=b'{"weight": 20}')
        return out

    def metrics(self) -> str:
        status, _, body = http_request(self.ports[self.key + "_admin"], "GET", "/metrics")
        return body.decode(errors="replace") if status == 200 else ""


class CanaryAnalysisProxy(CanaryProxy):
    """canary-proxy with automated analysis on both routes: its CPU per request beside the
    plain one's shows what the analysis costs the data plane."""
    key = "canary_an"
    name = "canary-proxy+analysis"
    template = "canary-proxy-analysis.yaml"


class NginxProxy(Proxy):
    key = "nginx"
    name = "nginx"

    def __init__(self, *args):
        super().__init__(*args)
        self.conf = self.dir / "nginx.conf"

    def prepare(self) -> None:
        render("proxy.nginx.conf", self.conf, {
            "PORT": self.port, "TMP": self.dir,
            "BLUE_PORT": self.ports["blue"], "GREEN_PORT": self.ports["green"], **self.limits})
        if self.tls_port:
            text = self.conf.read_text()
            listen = f"listen 127.0.0.1:{self.port} backlog=4096;"
            if listen not in text:
                raise BenchError("proxy.nginx.conf: no listen line to add TLS next to")
            self.conf.write_text(text.replace(listen, listen + (
                f"\n    listen 127.0.0.1:{self.tls_port} ssl http2 backlog=4096;"
                f"\n    ssl_certificate {self.limits['TLS_CERT']};"
                f"\n    ssl_certificate_key {self.limits['TLS_KEY']};"
                f"\n    ssl_protocols TLSv1.2 TLSv1.3;"
                f"\n    ssl_ciphers {TLS12_CIPHERS};"
                f"\n    ssl_prefer_server_ciphers on;")))
        r = subprocess.run(["nginx", "-t", "-q", "-p", f"{self.dir}/", "-c", str(self.conf),
                            "-e", str(self.dir / "nginx.error.log")],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise BenchError(f"nginx -t failed:\n{r.stdout}{r.stderr}")

    def argv(self) -> list[str]:
        return ["nginx", "-p", f"{self.dir}/", "-c", str(self.conf),
                "-e", str(self.dir / "nginx.error.log")]

    def after_start(self) -> None:
        deadline = time.monotonic() + 5
        while not self.procs.remember_children(self.proc):
            if time.monotonic() > deadline:
                raise BenchError("nginx started no worker")
            time.sleep(0.05)

    def pids(self) -> list[int]:
        return [self.proc.pid] + proc_children(self.proc.pid)  # master + worker


class HaproxyProxy(Proxy):
    key = "haproxy"
    name = "HAProxy"

    def __init__(self, *args):
        super().__init__(*args)
        self.conf = self.dir / "haproxy.cfg"

    def prepare(self) -> None:
        render("proxy.haproxy.cfg", self.conf, {
            "PORT": self.port, "BLUE_PORT": self.ports["blue"],
            "GREEN_PORT": self.ports["green"], **self.limits})
        r = subprocess.run(["haproxy", "-c", "-q", "-f", str(self.conf)],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise BenchError(f"haproxy -c failed:\n{r.stdout}{r.stderr}")

    def argv(self) -> list[str]:
        return ["haproxy", "-f", str(self.conf), "-db"]


# --------------------------------------------------------------------------------------------
# Load: wrk for scenarios (a)-(e)


@dataclass
class RunResult:
    requests: int
    seconds: float
    bytes: int
    rps: float
    mbps: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_req: float
    errors: dict[str, int]

    def throughput(self, unit: str) -> float:
        return self.mbps if unit == "MB/s" else self.rps


def wrk_script(tmp: Path, sc: Scenario) -> Path:
    path = tmp / f"wrk-{sc.key}.lua"
    if not path.exists():
        parts = []
        if sc.script:
            parts.append((LUA_DIR / sc.script).read_text())
        parts.append((LUA_DIR / "report.lua").read_text())
        path.write_text("\n".join(parts))
    return path


def run_wrk(proxy: Proxy, sc: Scenario, args, tmp: Path, duration: float | None = None
            ) -> RunResult:
    duration = duration or args.duration
    argv = ["wrk", "-t1", f"-c{args.connections}", f"-d{duration:g}s", "--latency",
            "--timeout", "5s", "-s", str(wrk_script(tmp, sc))]
    for h in sc.headers:
        argv += ["-H", h]
    if sc.tls:
        argv.append(f"https://127.0.0.1:{proxy.tls_port}{sc.path}")
    else:
        argv.append(f"http://127.0.0.1:{proxy.port}{sc.path}")
    if args.load_cpu is not None:
        argv = ["taskset", "-c", str(args.load_cpu)] + argv
    pids = proxy.pids()
    before = cpu_ticks(pids)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60,
                       start_new_session=True)
    after = cpu_ticks(pids)
    m = re.search(r"^BENCH_JSON (\{.*\})$", r.stdout, re.M)
    if r.returncode != 0 or not m:
        raise BenchError(f"wrk failed against {proxy.name} ({sc.key}), exit {r.returncode}:\n"
                         f"{r.stdout}{r.stderr}")
    j = json.loads(m.group(1))
    reqs = int(j["requests"])
    secs = j["duration_us"] / 1e6
    cpu_us = (after - before) / CLK_TCK * 1e6 if None not in (before, after) else float("nan")
    # 1 MB responses: few complete per run (and wrk counts the bytes of unfinished ones), so
    # the CPU is divided by the MiB received instead: the same unit, a steadier count.
    work = j["bytes"] / ONE_MB if sc.unit == "MB/s" else reqs
    errors = {k: int(j[k]) for k in ("status", "connect", "read", "write", "timeout") if j[k]}
    return RunResult(
        requests=reqs, seconds=secs, bytes=int(j["bytes"]), rps=reqs / secs,
        mbps=j["bytes"] / secs / ONE_MB, p50_ms=j["p50_us"] / 1000, p99_ms=j["p99_us"] / 1000,
        cpu_us_per_req=cpu_us / work if work else float("nan"), errors=errors)


H2_STREAMS = 10  # h2load -m: concurrent streams per connection in scenario (k)


def run_h2load(proxy: Proxy, sc: Scenario, args, tmp: Path, duration: float | None = None
               ) -> RunResult:
    """Scenario (k): h2load over TLS (ALPN h2), args.connections connections with H2_STREAMS
    streams each, for `duration` seconds. h2load reports the mean and standard deviation of
    the request time, not percentiles: p50 holds the mean, p99 mean + 2 sd (an estimate)."""
    duration = duration or args.duration
    argv = ["h2load", "-t1", f"-c{args.connections}", f"-m{H2_STREAMS}", f"-D{duration:g}",
            "--warm-up-time=1"]
    for h in sc.headers:
        argv += ["-H", h]
    argv.append(f"https://127.0.0.1:{proxy.tls_port}{sc.path}")
    if args.load_cpu is not None:
        argv = ["taskset", "-c", str(args.load_cpu)] + argv
    pids = proxy.pids()
    before = cpu_ticks(pids)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60,
                       start_new_session=True)
    after = cpu_ticks(pids)
    out = r.stdout
    fin = re.search(r"finished in ([\d.]+)(ms|s), ([\d.]+) req/s, ([\d.]+)([KMG]?B)/s", out)
    req = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, "
                    r"(\d+) failed, (\d+) errored, (\d+) timeout", out)
    lat = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", out)
    proto = re.search(r"Application protocol: (\S+)", out)
    if r.returncode != 0 or not (fin and req and lat) or not proto or proto.group(1) != "h2":
        raise BenchError(f"h2load failed against {proxy.name} ({sc.key}), exit {r.returncode}:\n"
                         f"{out}{r.stderr}")

    def ms(text: str) -> float:
        m = re.match(r"([\d.]+)(us|ms|s)", text)
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]

    secs = float(fin.group(1)) / (1000 if fin.group(2) == "ms" else 1)
    reqs = int(req.group(2))
    mult = {"B": 1, "KB": 1024, "MB": ONE_MB, "GB": 1024 * ONE_MB}[fin.group(5)]
    nbytes = float(fin.group(4)) * mult * secs
    cpu_us = (after - before) / CLK_TCK * 1e6 if None not in (before, after) else float("nan")
    errors = {k: int(req.group(i)) for k, i in (("failed", 3), ("errored", 4), ("timeout", 5))
              if int(req.group(i))}
    mean, sd = ms(lat.group(3)), ms(lat.group(4))
    return RunResult(
        requests=reqs, seconds=secs, bytes=int(nbytes), rps=reqs / secs if secs else 0.0,
        mbps=nbytes / secs / ONE_MB if secs else 0.0, p50_ms=mean, p99_ms=mean + 2 * sd,
        cpu_us_per_req=cpu_us / reqs if reqs else float("nan"), errors=errors)


# --------------------------------------------------------------------------------------------
# Scenario (f): idle keep-alive connections


@dataclass
class IdleResult:
    target: int
    established: int
    still_open: int
    failed: int
    rss_before: int
    rss_after: int
    seconds: float

    @property
    def per_conn(self) -> float:
        return (self.rss_after - self.rss_before) / self.established if self.established else 0


REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench-idle\r\n\r\n"


def response_complete(buf: bytes) -> bool:
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return False
    m = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", buf[:end])
    return m is not None and len(buf) >= end + 4 + int(m.group(1))


def open_idle_connections(proxy: Proxy, n: int, batch: int = 500) -> IdleResult:
    """Opens n connections, sends one request on each and reads its response, so every one is
    established through to the proxy and idle in keep-alive; then measures the proxy's RSS."""
    pids = proxy.pids()
    time.sleep(0.3)
    rss0 = rss_bytes(pids)
    t0 = time.monotonic()
    sel = selectors.DefaultSelector()
    held: list[socket.socket] = []
    failed = 0
    try:
        for start in range(0, n, batch):
            pending: dict[socket.socket, bytearray] = {}
            for _ in range(min(batch, n - start)):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                err = s.connect_ex(("127.0.0.1", proxy.port))
                if err not in (0, errno.EINPROGRESS):
                    s.close()
                    failed += 1
                    continue
                pending[s] = bytearray()
                sel.register(s, selectors.EVENT_WRITE)
            deadline = time.monotonic() + 15
            while pending and time.monotonic() < deadline:
                for key, mask in sel.select(timeout=0.5):
                    s = key.fileobj
                    if mask & selectors.EVENT_WRITE:
                        if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                            sel.unregister(s)
                            del pending[s]
                            s.close()
                            failed += 1
                            continue
                        s.send(REQUEST)  # small: one send on a fresh socket
                        sel.modify(s, selectors.EVENT_READ)
                    else:
                        try:
                            data = s.recv(65536)
                        except OSError:
                            data = b""
                        if not data:
                            sel.unregister(s)
                            del pending[s]
                            s.close()
                            failed += 1
                            continue
                        pending[s] += data
                        if response_complete(pending[s]):
                            sel.unregister(s)
                            del pending[s]
                            held.append(s)
            for s in pending:  # timed out
                sel.unregister(s)
                s.close()
                failed += 1
        seconds = time.monotonic() - t0
        time.sleep(0.5)
        rss1 = rss_bytes(pids)
        # Which of the held connections did the proxy close meanwhile? (readable = EOF here)
        still_open = 0
        for s in held:
            try:
                still_open += s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
            except BlockingIOError:
                still_open += 1
            except OSError:
                pass
        return IdleResult(n, len(held), still_open, failed, rss0, rss1, seconds)
    finally:
        for s in held:
            s.close()
        sel.close()


# --------------------------------------------------------------------------------------------
# Scenario (g): 10,000 host routes (canary-proxy alone)


def many_routes_config(n: int, port: int, admin_port: int, state: Path, blue_port: int) -> str:
    """n routes, route r-I for host r-I.bench, all to the blue backend; no rollout."""
    lines = [
        f"# {n} host routes for bench.py scenario (g); generated, do not edit.",
        f'listen: "127.0.0.1:{port}"',
        "workers: 1",
        "admin:",
        f'  listen: "127.0.0.1:{admin_port}"',
        f'state_file: "{state}"',
        "upstreams:",
        "  blue:",
        f'    endpoints: ["127.0.0.1:{blue_port}"]',
        "routes:",
    ]
    for i in range(n):
        lines += [f"  - name: r-{i}", f'    hosts: ["r-{i}.bench"]', '    path_prefix: "/"',
                  "    upstream: blue"]
    return "\n".join(lines) + "\n"


class ManyRoutesCanary(Proxy):
    """canary-proxy with MANY_ROUTES host routes; start() measures the time until it serves."""
    key = "canary_many"
    name = "canary-proxy (many routes)"

    def __init__(self, binary: Path, routes: int, *args):
        super().__init__(*args)
        self.binary = binary
        self.routes = routes
        self.conf = self.dir / "canary-proxy.yaml"
        self.admin_port = self.ports["canary_many_admin"]
        self.start_s = float("nan")

    def host(self, i: int) -> str:
        return f"r-{i}.bench"

    def prepare(self) -> None:
        self.conf.write_text(many_routes_config(self.routes, self.port, self.admin_port,
                                                self.dir / "state.json", self.ports["blue"]))
        r = subprocess.run([str(self.binary), "--config", str(self.conf), "--check"],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise BenchError(f"canary-proxy --check ({self.routes} routes) failed:\n"
                             f"{r.stdout}{r.stderr[-2000:]}")

    def argv(self) -> list[str]:
        return [str(self.binary), "--config", str(self.conf)]

    def start(self) -> None:
        """Start time = process started -> the last route answers 200 (polled every 5 ms)."""
        t0 = time.monotonic()
        self.proc = self.procs.start(self.name, self.argv(), self.cpu, self.log_path,
                                     cwd=self.dir)
        last = self.host(self.routes - 1)
        deadline = t0 + 120
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited with code {self.proc.returncode} at "
                                 f"start:\n" + tail(self.log_path))
            try:
                status, _, _ = http_request(self.port, "GET", "/", headers={"Host": last},
                                            timeout=2)
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name}: the last route does not answer 200 after 120 s:\n"
                                 + tail(self.log_path))
            time.sleep(0.005)
        self.start_s = time.monotonic() - t0

    def reload_seconds(self) -> float:
        """POST /api/v1/config/reload -> its answer (200 required)."""
        t0 = time.monotonic()
        status, _, body = http_request(self.admin_port, "POST", "/api/v1/config/reload",
                                       timeout=60)
        took = time.monotonic() - t0
        if status != 200:
            raise BenchError(f"reload of {self.routes} routes -> {status}: {body[:300]!r}")
        return took


@dataclass
class ManyRoutesResult:
    routes: int
    check_s: float
    start_s: float
    reload_s: list[float]
    first: list[RunResult]
    last: list[RunResult]

    def rps(self, which: str) -> float:
        return median([r.rps for r in getattr(self, which)])

    def cpu(self, which: str) -> float:
        return median([r.cpu_us_per_req for r in getattr(self, which)])

    def last_over_first(self) -> float:
        return self.rps("last") / self.rps("first")


def run_many_routes(binary: Path, args, procs: Processes, tmp: Path, ports: dict[str, int],
                    limits: dict[str, int]) -> ManyRoutesResult:
    p = ManyRoutesCanary(binary, args.many_routes, procs, tmp, args.proxy_cpu, ports, limits)
    t0 = time.monotonic()
    p.prepare()
    check_s = time.monotonic() - t0
    log(f"(g) {args.many_routes} routes: --check {check_s:.2f} s")
    try:
        p.start()
        log(f"(g) start until the last route serves: {p.start_s:.2f} s")
        reloads = [p.reload_seconds() for _ in range(3)]
        log("(g) reloads (API answered): " + ", ".join(f"{x:.2f} s" for x in reloads))
        first = Scenario("g", "first route", headers=(f"Host: {p.host(0)}",))
        last = Scenario("g", "last route", headers=(f"Host: {p.host(args.many_routes - 1)}",))
        run_wrk(p, first, args, tmp, duration=1)  # warm-up
        res = ManyRoutesResult(args.many_routes, check_s, p.start_s, reloads, [], [])
        for rnd in range(1, args.rounds + 1):
            for sc, runs in ((first, res.first), (last, res.last)):
                r = run_wrk(p, sc, args, tmp)
                runs.append(r)
                log(f"round {rnd}/{args.rounds} (g) {sc.title:11} {r.rps:10.1f} req/s  "
                    f"p50 {r.p50_ms:6.2f} ms  p99 {r.p99_ms:6.2f} ms  "
                    f"cpu {r.cpu_us_per_req:6.1f} us/req"
                    + (f"  errors: {fmt_errors(r.errors)}" if r.errors else ""))
        return res
    finally:
        p.stop()


# --------------------------------------------------------------------------------------------
# Sanity: each proxy splits 80/20, honours X-Canary, sticks users, streams 1 MB, closes.


def sanity_check(proxy: Proxy) -> dict[str, str]:
    res: dict[str, str] = {}
    problems: list[str] = []
    c = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    try:
        colors = {"blue": 0, "green": 0, "other": 0}
        for _ in range(100):
            st, _, body = http_request(proxy.port, "GET", "/", conn=c)
            key = body.decode(errors="replace").strip()
            colors[key if st == 200 and key in colors else "other"] += 1
        res["split /"] = f"{colors['blue']}/{colors['green']}" + (
            f" +{colors['other']} bad" if colors["other"] else "")
        if colors["green"] != 20 or colors["other"]:
            problems.append(f"100 requests gave blue/green {res['split /']}, expected 80/20")
        green = 0
        for _ in range(20):
            st, _, body = http_request(proxy.port, "GET", "/", conn=c,
                                       headers={"X-Canary": "always"})
            green += st == 200 and body.strip() == b"green"
        res["X-Canary: always"] = f"{green}/20 green"
        if green != 20:
            problems.append(f"X-Canary: always gave {green}/20 green")
        first: dict[str, bytes] = {}
        flips = 0
        for rnd in range(2):
            for u in range(1, 201):
                st, _, body = http_request(proxy.port, "GET", "/sticky/item", conn=c,
                                           headers={"X-User": f"user-{u}"})
                if rnd == 0:
                    first[f"user-{u}"] = body
                elif first[f"user-{u}"] != body:
                    flips += 1
        share = sum(b.strip() == b"green" for b in first.values()) / len(first)
        res["sticky"] = f"{share:.0%} green, {flips} flips"
        if flips or not 0.10 <= share <= 0.30:
            problems.append(f"sticky: {share:.0%} of 200 users on green, {flips} changed side")
        st, _, body = http_request(proxy.port, "GET", "/1m.bin", conn=c)
        res["1 MB"] = "ok" if st == 200 and len(body) == ONE_MB else f"{st}, {len(body)} bytes"
        if res["1 MB"] != "ok":
            problems.append(f"GET /1m.bin: {res['1 MB']}")
    except (OSError, http.client.HTTPException) as e:
        problems.append(f"error: {e!r}")
    finally:
        c.close()
    try:
        st, h, _ = http_request(proxy.port, "GET", "/", headers={"Connection": "close"})
        res["Connection: close"] = "ok" if st == 200 and h.get("connection", "").lower() == \
            "close" else f"{st}, Connection: {h.get('connection')!r}"
        if res["Connection: close"] != "ok":
            problems.append(f"Connection: close request: {res['Connection: close']}")
    except (OSError, http.client.HTTPException) as e:
        problems.append(f"Connection: close request: {e!r}")
    res["problems"] = "; ".join(problems)
    return res


# --------------------------------------------------------------------------------------------
# Report


def median(xs: list[float]) -> float:
    xs = [x for x in xs if x == x]  # drop NaN
    return statistics.median(xs) if xs else float("nan")


def fmt_num(v: float, digits: int = 0) -> str:
    if v != v:
        return "–"
    return f"{v:,.{digits}f}".replace(",", "\u202f")  # thin space between thousands


def fmt_ratio(r: float) -> str:
    return "–" if r != r else f"{r:.2f}"


def ratio_stats(rounds: list[tuple[float, float]]) -> tuple[float, float, float]:
    rs = [a / b for a, b in rounds if b and a == a and b == b]
    if not rs:
        return float("nan"), float("nan"), float("nan")
    return statistics.median(rs), min(rs), max(rs)


def fmt_errors(e: dict[str, int]) -> str:
    if not e:
        return "0"
    names = {"status": "non-2xx", "connect": "connect", "read": "read", "write": "write",
             "timeout": "timeout"}
    return ", ".join(f"{names[k]} {v}" for k, v in e.items())


def machine_info() -> dict[str, str]:
    model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cores": str(os.cpu_count()), "cpu": model,
            "kernel": platform.release(), "python": platform.python_version()}


def build_report(args, results, idle, sanity, proxies, versions, info, notes, micro,
                 weight_latency: str, started: float,
                 many: ManyRoutesResult | None = None, analysis_sim: str | None = None) -> str:
    keys = [p.key for p in proxies]
    L: list[str] = []
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    L.append(f"# canary-proxy benchmark — {now}")
    L.append("")
    L.append(f"- machine: {info['cores']} cores ({info['cpu']}), Linux {info['kernel']}")
    L.append("- versions: " + "; ".join(f"{k}: {v}" for k, v in versions.items()))
    cpus = ("proxy on CPU %s, backends (nginx, 1 worker) + load on CPU %s"
            % (args.proxy_cpu, args.load_cpu)) if args.proxy_cpu is not None else \
        "one CPU: nothing pinned"
    load = (f"`wrk -t1 -c{args.connections} -d{args.duration:g}s --latency`; "
            f"{args.rounds} interleaved rounds, medians") if results else "no wrk scenario"
    L.append(f"- setup: loopback; each proxy 1 worker; {cpus}; {load}")
    L.append("- ×nginx = median over rounds of (proxy ÷ nginx in the same round); for CPU "
             "the range of the per-round ratios follows in brackets. CPU µs/req = proxy "
             "utime+stime over the run ÷ requests (nginx: master + worker); for (e) ÷ MiB "
             "received, i.e. per 1 MiB response.")
    L.append("")
    if results:
        L.append("| scenario | proxy | throughput | ×nginx | p50 ms | ×nginx | p99 ms | ×nginx "
                 "| CPU µs/req | ×nginx | errors |")
        L.append("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|")
        for sk, per_proxy in results.items():
            sc = SCENARIOS[sk]
            base = per_proxy.get("nginx")
            for pk in keys:
                runs = per_proxy.get(pk) or []
                if not runs:
                    continue
                thr = median([r.throughput(sc.unit) for r in runs])
                p50 = median([r.p50_ms for r in runs])
                p99 = median([r.p99_ms for r in runs])
                cpu = median([r.cpu_us_per_req for r in runs])
                errs: dict[str, int] = {}
                for r in runs:
                    for k, v in r.errors.items():
                        errs[k] = errs.get(k, 0) + v

                def rt(get):
                    if not base:
                        return float("nan"), float("nan"), float("nan")
                    return ratio_stats([(get(a), get(b)) for a, b in zip(runs, base)])
                r_thr = rt(lambda r: r.throughput(sc.unit))[0]
                r_p50 = rt(lambda r: r.p50_ms)[0]
                r_p99 = rt(lambda r: r.p99_ms)[0]
                r_cpu, lo, hi = rt(lambda r: r.cpu_us_per_req)
                cpu_ratio = fmt_ratio(r_cpu)
                if pk != "nginx" and r_cpu == r_cpu and len(runs) > 1:
                    cpu_ratio += f" ({lo:.2f}–{hi:.2f})"
                unit = sc.unit
                thr_s = f"{fmt_num(thr, 1 if unit == 'MB/s' else 0)} {unit}"
                L.append(f"| ({sk}) {sc.title} | {PROXY_NAMES[pk]} | {thr_s} | "
                         f"{fmt_ratio(r_thr)} | {p50:.2f} | {fmt_ratio(r_p50)} | {p99:.2f} | "
                         f"{fmt_ratio(r_p99)} | {cpu:.1f} | {cpu_ratio} | {fmt_errors(errs)} |")
        L.append("")
    if idle:
        n = next(iter(idle.values())).target
        L.append(f"**(f) {n:,} idle keep-alive connections** (one request each, then held): "
                 "proxy RSS growth (VmRSS; nginx: master + worker)")
        L.append("")
        L.append("| proxy | held open | RSS before | RSS after | growth per connection | "
                 "×nginx |")
        L.append("|---|--:|--:|--:|--:|--:|")
        base = idle.get("nginx")
        for pk in keys:
            r = idle.get(pk)
            if not r:
                continue
            ratio = r.per_conn / base.per_conn if base and base.per_conn > 0 else float("nan")
            held = f"{r.still_open:,} / {r.target:,}"
            if r.failed:
                held += f" ({r.failed} failed)"
            L.append(f"| {PROXY_NAMES[pk]} | {held} | {r.rss_before / ONE_MB:.1f} MiB | "
                     f"{r.rss_after / ONE_MB:.1f} MiB | {r.per_conn / 1024:.2f} KiB | "
                     f"{fmt_ratio(ratio)} |")
        L.append("")
    if many:
        ratio = many.last_over_first()
        L.append(f"**(g) {many.routes:,} host routes** (canary-proxy alone, 1 worker; route "
                 f"r-0 is the first of the file, r-{many.routes - 1} the last; `wrk -t1 "
                 f"-c{args.connections} -d{args.duration:g}s -H 'Host: …'`, {args.rounds} "
                 "interleaved rounds, medians; start = process started → the last route "
                 "answers 200; reload = `POST /api/v1/config/reload` answered, 3 times)")
        L.append("")
        L.append("| routes | --check | start | reload | first route | last route | "
                 "last ÷ first | within 5 % | CPU µs/req first / last |")
        L.append("|--:|--:|--:|--:|--:|--:|--:|---|--:|")
        L.append(f"| {many.routes:,} | {many.check_s:.2f} s | {many.start_s:.2f} s | "
                 + " / ".join(f"{x:.2f}" for x in many.reload_s) + " s | "
                 f"{fmt_num(many.rps('first'))} req/s | {fmt_num(many.rps('last'))} req/s | "
                 f"{ratio:.3f} | {'yes' if abs(ratio - 1) <= 0.05 else 'no'} | "
                 f"{many.cpu('first'):.1f} / {many.cpu('last'):.1f} |")
        L.append("")
    if sanity:
        L.append("**Sanity checks** (before measuring; expected: 80/20 split, all green on "
                 "`X-Canary: always`, ~20 % of users green and none changing side, 1 MB intact, "
                 "`Connection: close` honoured)")
        L.append("")
        L.append("| proxy | split / (blue/green) | X-Canary: always | sticky (200 users ×2) | "
                 "1 MB | Connection: close |")
        L.append("|---|---|---|---|---|---|")
        for pk in keys:
            s = sanity.get(pk)
            if s:
                L.append(f"| {PROXY_NAMES[pk]} | {s.get('split /', '?')} | "
                         f"{s.get('X-Canary: always', '?')} | {s.get('sticky', '?')} | "
                         f"{s.get('1 MB', '?')} | {s.get('Connection: close', '?')} |")
        L.append("")
    if weight_latency:
        L.append(f"**Rollout changes**: {weight_latency}.")
        L.append("")
    if notes:
        L.append("**Notes**")
        L.append("")
        L.extend(f"- {n}" for n in notes)
        L.append("")
    if analysis_sim:
        L.append("**Automated analysis in simulation** (`analysis_sim`, seeded, no network): "
                 "A/A false-abort rate and canary requests needed to catch 1 % -> 2 %, the "
                 "sequential test against a per-interval success-rate threshold on the same "
                 "traffic")
        L.append("")
        L.append(analysis_sim)
        L.append("")
    if micro:
        L.append("**Micro benchmarks** (`micro_bench --benchmark_min_time=0.1`, on the proxy "
                 "CPU)")
        L.append("")
        L.append(micro)
        L.append("")
    L.append(f"_Total run time: {time.monotonic() - started:.0f} s._")
    return "\n".join(L) + "\n"


def run_analysis_sim(binary: Path, cpu: int | None, timeout: float) -> str | None:
    """The simulation's own markdown output (it prints its tables), or None if not built."""
    if not binary.exists():
        return None
    argv = [str(binary)]
    if cpu is not None:
        argv = ["taskset", "-c", str(cpu)] + argv
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                           start_new_session=True)
    except (subprocess.TimeoutExpired, OSError) as e:
        return f"(analysis_sim failed: {e!r})"
    if r.returncode != 0:
        return f"(analysis_sim exited {r.returncode}: {r.stderr.strip()[:300]})"
    return r.stdout.strip()


def run_micro(binary: Path, cpu: int | None, timeout: float) -> str | None:
    if not binary.exists():
        return None
    argv = [str(binary), "--benchmark_min_time=0.1", "--benchmark_format=json"]
    if cpu is not None:
        argv = ["taskset", "-c", str(cpu)] + argv
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                           start_new_session=True)
        data = json.loads(r.stdout)
    except (subprocess.TimeoutExpired, json.JSONDecodeError, OSError) as e:
        return f"(micro_bench failed: {e!r})"
    rows = ["| benchmark | time | CPU | iterations | |", "|---|--:|--:|--:|---|"]
    for b in data.get("benchmarks", []):
        if b.get("run_type") == "aggregate":
            continue
        unit = b.get("time_unit", "ns")
        extra = []
        for k in ("items_per_second", "bytes_per_second"):
            if k in b:
                v = b[k]
                extra.append(f"{v / 1e6:.1f} M items/s" if k == "items_per_second"
                             else f"{v / ONE_MB:.0f} MiB/s")
        if b.get("label"):
            extra.append(b["label"])
        rows.append(f"| `{b['name']}` | {b['real_time']:.1f} {unit} | {b['cpu_time']:.1f} "
                    f"{unit} | {b['iterations']:,} | {', '.join(extra)} |")
    return "\n".join(rows)


# --------------------------------------------------------------------------------------------
# Main


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build",
                    help="build directory holding bin/canary-proxy (default: build)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--duration", type=float, default=4.0,
                    help="seconds per wrk run (default 4)")
    ap.add_argument("--only", default=ALL_SCENARIOS,
                    help="scenarios to run, e.g. a,b or ae (default: all of a-l)")
    ap.add_argument("--proxies", default="canary,canary_an,nginx,haproxy",
                    help="comma list of canary, canary_an (analysis on), nginx, haproxy "
                         "(default: all)")
    ap.add_argument("--no-analysis-sim", action="store_true",
                    help="skip the analysis quality simulation (analysis_sim)")
    ap.add_argument("--connections", type=int, default=64, help="wrk -c (default 64)")
    ap.add_argument("--idle-connections", type=int, default=10000,
                    help="connections held in scenario (f) (default 10000)")
    ap.add_argument("--many-routes", type=int, default=10000,
                    help="host routes in scenario (g) (default 10000)")
    ap.add_argument("--proxy-cpu", type=int, default=0, help="CPU of the proxies (default 0)")
    ap.add_argument("--load-cpu", type=int, default=1,
                    help="CPU of the backends and the load generator (default 1)")
    ap.add_argument("--no-micro", action="store_true",
                    help="skip the Google Benchmark micro benchmarks")
    ap.add_argument("--out", default=str(BENCH_DIR / "results" / "latest.md"),
                    help="Markdown report (default bench/results/latest.md; a .json with the "
                         "raw runs is written next to it)")
    ap.add_argument("--keep-tmp", action="store_true",
                    help="keep the temporary directory with configs and logs")
    args = ap.parse_args(argv)
    args.only = [c for c in args.only.replace(",", "").strip().lower()]
    bad = [c for c in args.only if c not in ALL_SCENARIOS]
    if bad or not args.only:
        ap.error(f"--only: unknown scenario(s) {bad}; choose from {ALL_SCENARIOS}")
    args.proxies = [p.strip().lower() for p in args.proxies.split(",") if p.strip()]
    bad = [p for p in args.proxies if p not in PROXY_NAMES]
    if bad or not args.proxies:
        ap.error(f"--proxies: unknown {bad}; choose from {','.join(PROXY_NAMES)}")
    if args.rounds < 1 or args.duration <= 0 or args.many_routes < 1:
        ap.error("--rounds, --duration and --many-routes must be positive")
    return args


def resolve_build(build: str) -> Path:
    p = Path(build)
    if p.is_absolute():
        return p
    for base in (Path.cwd(), REPO):
        if (base / p / "bin" / "canary-proxy").exists():
            return base / p
    return REPO / p


def raise_fd_limit(need: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for want in (max(need, 65536), hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
            return want
        except (ValueError, OSError):
            continue
    return soft


class Interrupted(Exception):
    pass


def on_signal(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


def main(argv=None) -> int:
    started = time.monotonic()
    args = parse_args(argv)
    build = resolve_build(args.build)
    canary_bin = build / "bin" / "canary-proxy"

    ncpu = os.cpu_count() or 1
    if ncpu < 2:
        log("warning: one CPU: proxies, backends and load share it (nothing is pinned)")
        args.proxy_cpu = args.load_cpu = None
    for tool in (["wrk", "taskset", "nginx"] + (["haproxy"] if "haproxy" in args.proxies else [])
                 + (["h2load"] if any(SCENARIOS[s].h2 for s in args.only if s in SCENARIOS)
                    else [])):
        if not shutil.which(tool):
            raise BenchError(f"{tool} not found (make bench installs nginx-light haproxy wrk "
                             "util-linux)")
    if "canary" in args.proxies and not canary_bin.exists():
        raise BenchError(f"{canary_bin} not found: build first (make build) or pass --build")

    scen = [s for s in args.only if s in SCENARIOS]
    do_idle = IDLE_SCENARIO in args.only
    do_many = MANY_ROUTES_SCENARIO in args.only
    if do_many and "canary" not in args.proxies:
        raise BenchError("scenario (g) measures canary-proxy: add canary to --proxies")
    # (a)-(f) compare the three proxies; (g) alone needs only the backends and its own proxy.
    standard = bool(scen) or do_idle
    est = ((args.rounds * len(scen) * len(args.proxies) * (args.duration + 0.5)
            + len(args.proxies) * (8 + (10 if do_idle else 0)) if standard else 0)
           + (args.rounds * 2 * (args.duration + 0.5) + 20 if do_many else 0)
           + (15 if not args.no_micro else 0))
    log(f"canary-proxy benchmark: scenarios {''.join(args.only)}, proxies "
        f"{','.join(args.proxies)}, {args.rounds} rounds x {args.duration:g}s; estimated "
        f"{est:.0f}s")

    nofile = raise_fd_limit(2 * args.idle_connections + 4096)
    if do_idle and nofile < args.idle_connections + 1024:
        args.idle_connections = max(100, nofile - 1024)
        log(f"warning: open-file limit {nofile}: scenario (f) holds {args.idle_connections}")
    # Room for the idle connections plus the load's and the upstream connections. Processes
    # inherit this script's open-file limit.
    maxconn = args.idle_connections + 1024
    limits = {"NOFILE": nofile, "MAXCONN": maxconn,
              "WORKER_CONNECTIONS": min(nofile - 64, maxconn + 1024)}
    if args.load_cpu is not None:
        os.sched_setaffinity(0, {args.load_cpu})  # this script is load, too (scenario f)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    versions = {}
    if "canary" in args.proxies:
        versions["canary-proxy"] = first_line([str(canary_bin), "--version"]).split()[-1]
    versions["nginx"] = first_line(["nginx", "-v"]).split("/")[-1]
    if "haproxy" in args.proxies:
        versions["HAProxy"] = first_line(["haproxy", "-v"]).split()[2]
    versions["wrk"] = first_line(["wrk", "-v"]).split()[1]

    procs = Processes()
    tmp = Path(tempfile.mkdtemp(prefix="canary-bench-"))
    os.chmod(tmp, 0o755)  # nginx workers (user nobody when run as root) read the 1 MB file
    notes: list[str] = []
    weight_latency = ""
    results: dict[str, dict[str, list[RunResult]]] = {}
    idle: dict[str, IdleResult] = {}
    sanity: dict[str, dict[str, str]] = {}
    proxies: list[Proxy] = []
    many: ManyRoutesResult | None = None
    micro = None
    analysis_sim = None
    failed = True  # until the end of the try block: keep the logs of a failed run
    interrupted = False
    try:
        names = ["blue", "green", "canary", "canary_admin", "nginx", "haproxy", "canary_many",
                 "canary_many_admin", "canary_an", "canary_an_admin"]
        if any(SCENARIOS[sk].tls for sk in scen):
            cert, key = make_certificate(tmp)
            limits["TLS_CERT"], limits["TLS_KEY"] = cert, key
            names += [k + "_tls" for k in TLS_PROXIES if k in args.proxies]
        ports = dict(zip(names, free_ports(len(names))))
        www = tmp / "www"
        www.mkdir()
        (www / "1m.bin").write_bytes(os.urandom(ONE_MB))
        os.chmod(www, 0o755)
        os.chmod(www / "1m.bin", 0o644)

        # Backends: one nginx (ports blue and green), on the load CPU.
        bdir = tmp / "backends"
        bdir.mkdir()
        bconf = render("backends.nginx.conf", bdir / "nginx.conf", {
            "TMP": bdir, "WWW": www, "BLUE_PORT": ports["blue"], "GREEN_PORT": ports["green"],
            **limits})
        blog = bdir / "backends.log"
        bproc = procs.start("backends", ["nginx", "-p", f"{bdir}/", "-c", str(bconf),
                                         "-e", str(bdir / "error.log")],
                            args.load_cpu, blog, cwd=bdir)
        wait_port(ports["blue"], bproc, "backend nginx", blog)
        wait_port(ports["green"], bproc, "backend nginx", blog)
        procs.remember_children(bproc)

        for key in (args.proxies if standard else []):
            common = (procs, tmp, args.proxy_cpu, ports, limits)
            if key == "canary":
                p: Proxy = CanaryProxy(canary_bin, *common)
            elif key == "canary_an":
                p = CanaryAnalysisProxy(canary_bin, *common)
            elif key == "nginx":
                p = NginxProxy(*common)
            else:
                p = HaproxyProxy(*common)
            p.prepare()
            p.start()
            proxies.append(p)
            log(f"started {p.name} on 127.0.0.1:{p.port} (pid {p.proc.pid})")

        for p in proxies:
            sanity[p.key] = s = sanity_check(p)
            if s["problems"]:
                notes.append(f"{p.name} sanity check: {s['problems']}")
                log(f"!! {p.name} sanity check: {s['problems']}")
            run_wrk(p, SCENARIOS["a"], args, tmp, duration=1)  # warm-up (pools, caches)

        for rnd in range(1, args.rounds + 1):
            for sk in scen:
                sc = SCENARIOS[sk]
                for p in proxies:
                    if sc.tls and not p.tls_port:
                        continue
                    p.ensure_running(f"round {rnd} ({sk})")
                    r = (run_h2load if sc.h2 else run_wrk)(p, sc, args, tmp)
                    results.setdefault(sk, {}).setdefault(p.key, []).append(r)
                    log(f"round {rnd}/{args.rounds} ({sk}) {p.name:13} "
                        f"{r.throughput(sc.unit):10.1f} {sc.unit}  p50 {r.p50_ms:6.2f} ms  "
                        f"p99 {r.p99_ms:6.2f} ms  cpu {r.cpu_us_per_req:6.1f} us/req"
                        + (f"  errors: {fmt_errors(r.errors)}" if r.errors else ""))
                    if not p.alive():
                        p.ensure_running(f"the end of round {rnd} ({sk})")

        if do_idle:
            for p in proxies:
                if p.key == "canary_an":
                    continue  # (f) holds no request: the analysis has nothing to do there
                p.ensure_running("scenario (f)")
                r = open_idle_connections(p, args.idle_connections)
                idle[p.key] = r
                log(f"(f) {p.name:13} held {r.still_open}/{r.target} "
                    f"(failed {r.failed}) in {r.seconds:.1f}s: RSS "
                    f"{r.rss_before / ONE_MB:.1f} -> {r.rss_after / ONE_MB:.1f} MiB, "
                    f"{r.per_conn / 1024:.2f} KiB/connection")
                if r.still_open < r.target:
                    notes.append(f"{p.name} (f): only {r.still_open} of {r.target} idle "
                                 f"connections were still open at the measurement "
                                 f"({r.failed} failed to get a response)")
                time.sleep(1.0)  # let the proxy see the closes before the next one
                if not p.alive():
                    p.ensure_running("the end of scenario (f)")

        if TUNNEL_SCENARIO in args.only and "canary" in args.proxies:
            import tunnel_bench  # bench/, next to this file
            line = tunnel_bench.run(sys.modules[__name__], canary_bin, procs, tmp,
                                    args.proxy_cpu, args.load_cpu, args.rounds, args.duration)
            log(line)
            notes.append(line)

        if FLEET_SCENARIO in args.only and "canary" in args.proxies:
            import fleet_delay  # bench/, next to this file
            line = fleet_delay.run(sys.modules[__name__], canary_bin, procs, tmp,
                                   args.proxy_cpu, args.load_cpu)
            log(line)
            notes.append(line)

        if do_many:
            many = run_many_routes(canary_bin, args, procs, tmp, ports, limits)
            log(f"(g) last route / first route: {many.last_over_first():.3f} "
                f"({'within' if abs(many.last_over_first() - 1) <= 0.05 else 'NOT within'} 5 %)")

        # How fast an API weight change reaches routing (target: 10 ms).
        for p in proxies:
            if p.key == "canary" and p.alive():
                ms = sorted(p.weight_change_latency())
                weight_latency = (f"API weight change visible in routing: median "
                                  f"{median(ms):.2f} ms, max {ms[-1]:.2f} ms over {len(ms)} "
                                  f"changes (PUT answered -> first request routed by the new "
                                  f"weight, keep-alive client)")
                log(weight_latency)

        # canary-proxy's own view: errors and local replies it counted, warnings it logged.
        for p in proxies:
            if p.crashes:
                notes.extend(p.crashes)
            if isinstance(p, CanaryProxy) and p.alive():
                p.verify_rollout()
                bad = []
                for line in p.metrics().splitlines():
                    if line.startswith(("canary_proxy_local_replies_total",
                                        "canary_proxy_upstream_errors_total")):
                        name, _, val = line.rpartition(" ")
                        if float(val) > 0:
                            bad.append(f"`{name} {val}`")
                if bad:
                    notes.append("canary-proxy metrics: " + ", ".join(bad))
                logged = p.log_path.read_text(errors="replace").splitlines()
                warn = [x for x in logged if re.search(r"\b(warn|warning|error|critical)\b", x)]
                if warn:
                    notes.append(f"canary-proxy logged {len(warn)} warning/error lines, e.g. "
                                 f"`{warn[0][:200]}`")

        if not args.no_micro:
            micro = run_micro(build / "bin" / "micro_bench", args.proxy_cpu, timeout=90)
            if micro is None:
                notes.append(f"micro benchmarks skipped: {args.build}/bin/micro_bench is not "
                             "built (needs libbenchmark-dev)")
        if not args.no_analysis_sim:
            log("analysis quality simulation (analysis_sim)")
            analysis_sim = run_analysis_sim(build / "bin" / "analysis_sim", args.proxy_cpu,
                                            timeout=300)
            if analysis_sim is None:
                notes.append(f"analysis simulation skipped: {args.build}/bin/analysis_sim is "
                             "not built")
        failed = False
    except Interrupted as e:
        log(f"\ninterrupted ({e}): stopping everything this run started")
        interrupted = True
    except BenchError as e:
        log(f"error: {e}")
    finally:
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)  # a second Ctrl-C must not skip the clean-up
        procs.stop_all()
        if args.keep_tmp or (failed and not interrupted):
            log(f"configs and logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_DFL)
    if failed:
        return 1

    info = machine_info()
    report = build_report(args, results, idle, sanity, proxies, versions, info, notes, micro,
                          weight_latency, started, many, analysis_sim)
    sys.stdout.write(report)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    raw = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "machine": info, "versions": versions,
        "params": {k: getattr(args, k) for k in ("rounds", "duration", "connections",
                                                 "idle_connections", "proxy_cpu", "load_cpu")},
        "runs": {sk: {pk: [r.__dict__ for r in rs] for pk, rs in per.items()}
                 for sk, per in results.items()},
        "idle": {pk: dict(r.__dict__, per_conn=r.per_conn) for pk, r in idle.items()},
        "sanity": sanity, "notes": notes,
        "many_routes": None if many is None else {
            "routes": many.routes, "check_s": many.check_s, "start_s": many.start_s,
            "reload_s": many.reload_s, "first": [r.__dict__ for r in many.first],
            "last": [r.__dict__ for r in many.last]},
    }
    out.with_suffix(".json").write_text(json.dumps(raw, indent=1) + "\n")
    log(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        log(f"error: {e}")
        sys.exit(1)
    except (Interrupted, KeyboardInterrupt):
        sys.exit(130)
