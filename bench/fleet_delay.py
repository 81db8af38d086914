#!/usr/bin/env python3
"""Scenario (l) of bench.py: how long a rollout change made through one replica takes to reach
the routing of every replica of a fleet sharing its state through etcd.

One etcd member (Debian's etcd-server) and three canary-proxy replicas (one worker each,
state_store: {type: etcd}) on 127.0.0.1. A rollout is started, then N manual weights are set
one after the other with PUT .../weight on replica r0; for each, every replica's status (the
snapshot its data plane routes by) is polled back to back on keep-alive connections until all
three report the new weight. The delay of a change is from sending the PUT to the last replica
reporting it (r0 included: its own answer counts when it carries the weight). Figures: p50,
p99 and max over the N changes, and the same for the PUT's own answer (its compare-and-swap
committed to etcd), for comparison. Bounded: N <= 1000, 5 s per change, 180 s in all.

Standard library only. Standalone: `python3 bench/fleet_delay.py [--build build] [-n 200]`
prints the line (and --json the raw delays); bench.py calls run(). Every process is stopped by
its own id.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPLICAS = 3
ROUTE = "canary-demo"
MAX_CHANGES = 1000
CHANGE_TIMEOUT_S = 5.0
TOTAL_TIMEOUT_S = 180.0


class Admin:
    """A keep-alive connection to one replica's admin listener."""

    def __init__(self, port: int):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)

    def call(self, method: str, path: str, body=None) -> tuple[int, dict]:
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                r = self.conn.getresponse()
                text = r.read()
                return r.status, (json.loads(text) if text else {})
            except (http.client.HTTPException, OSError):
                # A connection the server closed while idle: one new connection, then give up.
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def weight(self) -> int | None:
        status, body = self.call("GET", f"/api/v1/rollouts/{ROUTE}")
        return body.get("weight") if status == 200 else None

    def close(self) -> None:
        self.conn.close()


def percentile(xs: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


def wait_until(check, timeout: float, what: str, bench) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, http.client.HTTPException, ValueError) as e:
            last = e
        time.sleep(0.05)
    raise bench.BenchError(f"timed out waiting for {what} ({last!r})")


def start_fleet(bench, binary: Path, procs, d: Path, proxy_cpu, load_cpu):
    """etcd + 3 replicas; returns their admin ports."""
    etcd_bin = shutil.which("etcd") or "/usr/bin/etcd"
    if not os.access(etcd_bin, os.X_OK):
        raise bench.BenchError("etcd not found (make deps installs etcd-server)")
    client_port, peer_port, backend_port, *ports = bench.free_ports(3 + 2 * REPLICAS)
    client = f"http://127.0.0.1:{client_port}"
    peer = f"http://127.0.0.1:{peer_port}"
    etcd = procs.start("etcd", [etcd_bin, "--name=bench", f"--data-dir={d / 'etcd'}",
                                f"--listen-client-urls={client}",
                                f"--advertise-client-urls={client}",
                                f"--listen-peer-urls={peer}",
                                f"--initial-advertise-peer-urls={peer}",
                                f"--initial-cluster=bench={peer}"],
                       load_cpu, d / "etcd.log")
    bench.wait_port(client_port, etcd, "etcd", d / "etcd.log")
    admin_ports = []
    for i in range(REPLICAS):
        listen, admin = ports[2 * i], ports[2 * i + 1]
        rd = d / f"r{i}"
        rd.mkdir()
        conf = rd / "canary-proxy.yaml"
        # The endpoints need not answer: only the status is measured, never the data plane.
        conf.write_text(
            f'listen: "127.0.0.1:{listen}"\nworkers: 1\n'
            f'admin:\n  listen: "127.0.0.1:{admin}"\nstate_file: "{rd}/state.json"\n'
            f'state_store:\n  type: etcd\n  etcd:\n    endpoints: ["{client}"]\n'
            f'    prefix: "/bench/"\n    replica_id: "r{i}"\n'
            f'upstreams:\n  blue:\n    endpoints: ["127.0.0.1:{backend_port}"]\n'
            f'  green:\n    endpoints: ["127.0.0.1:{backend_port}"]\n'
            f'routes:\n  - name: {ROUTE}\n    path_prefix: "/"\n    upstream: blue\n'
            f'    steps:\n      - setWeight: 1\n      - pause: {{}}\n')
        p = procs.start(f"canary-proxy r{i}", [str(binary), "--config", str(conf)], proxy_cpu,
                        rd / "proxy.log", cwd=rd)
        bench.wait_port(admin, p, f"canary-proxy r{i}", rd / "proxy.log")
        admin_ports.append(admin)
    return admin_ports


def measure(bench, admins: list[Admin], n: int) -> tuple[list[float], list[float]]:
    """Delays (ms) of n weight changes through admins[0]: to every replica, and to the PUT's
    answer."""
    first = admins[0]
    status, body = first.call("PUT", f"/api/v1/rollouts/{ROUTE}/upstream", {"upstream": "green"})
    if status != 200:
        raise bench.BenchError(f"starting the rollout: {status} {body}")
    wait_until(lambda: all(a.weight() == 1 for a in admins), 10, "the rollout on every replica",
               bench)
    all_ms, put_ms = [], []
    started = time.monotonic()
    for k in range(n):
        if time.monotonic() - started > TOTAL_TIMEOUT_S:
            bench.log(f"(l) stopped after {k} changes: {TOTAL_TIMEOUT_S:.0f}s budget spent")
            break
        w = 2 + k % 97  # 2..98, never the previous value
        t0 = time.perf_counter()
        status, body = first.call("PUT", f"/api/v1/rollouts/{ROUTE}/weight", {"weight": w})
        answered = time.perf_counter()
        if status != 200:
            raise bench.BenchError(f"PUT weight {w}: {status} {body}")
        seen = {0: time.perf_counter()} if body.get("weight") == w else {}
        deadline = t0 + CHANGE_TIMEOUT_S
        while len(seen) < len(admins):
            for i, a in enumerate(admins):
                if i not in seen and a.weight() == w:
                    seen[i] = time.perf_counter()
            if time.perf_counter() > deadline:
                raise bench.BenchError(f"weight {w} not seen by replicas "
                                       f"{sorted(set(range(len(admins))) - set(seen))} "
                                       f"within {CHANGE_TIMEOUT_S:.0f}s")
        all_ms.append((max(seen.values()) - t0) * 1000)
        put_ms.append((answered - t0) * 1000)
    return all_ms, put_ms


def summary(all_ms: list[float], put_ms: list[float]) -> str:
    def fig(xs):
        return (f"p50 {statistics.median(xs):.2f} ms, p99 {percentile(xs, 99):.2f} ms, "
                f"max {max(xs):.2f} ms")
    return (f"(l) fleet: {len(all_ms)} API weight changes through one of {REPLICAS} replicas "
            f"sharing a 1-member etcd, until every replica's status shows it: {fig(all_ms)} "
            f"(the PUT's own answer, committed to etcd: {fig(put_ms)}; from sending the PUT, "
            f"statuses polled back to back on keep-alive connections)")


def run(bench, binary: Path, procs, tmp: Path, proxy_cpu, load_cpu, n: int = 200,
        raw: dict | None = None) -> str:
    """One markdown line for bench.py's report (bench is the bench module)."""
    n = max(1, min(n, MAX_CHANGES))
    d = tmp / "fleet"
    d.mkdir()
    before = list(procs.procs)
    admins = []
    try:
        admins = [Admin(p) for p in start_fleet(bench, binary, procs, d, proxy_cpu, load_cpu)]
        # Every replica registered, one leader.
        wait_until(lambda: all(a.call("GET", "/api/v1/cluster")[1].get("leader")
                               for a in admins), 20, "a leader known to every replica", bench)
        all_ms, put_ms = measure(bench, admins, n)
    finally:
        for a in admins:
            a.close()
        for _, p in [x for x in reversed(procs.procs) if x not in before]:
            procs.stop(p)
    if raw is not None:
        raw.update({"all_ms": all_ms, "put_ms": put_ms})
    return summary(all_ms, put_ms)


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench  # bench/bench.py: process handling, ports, errors

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build", help="build directory (default build)")
    ap.add_argument("-n", type=int, default=200, help=f"weight changes (default 200, at most "
                    f"{MAX_CHANGES})")
    ap.add_argument("--json", help="write the raw delays (ms) to this file")
    args = ap.parse_args()
    binary = bench.resolve_build(args.build) / "bin" / "canary-proxy"
    if not binary.exists():
        bench.log(f"{binary} not found: build first")
        return 1
    procs = bench.Processes()
    tmp = Path(tempfile.mkdtemp(prefix="canary-fleet-bench-"))
    raw: dict = {}
    try:
        line = run(bench, binary, procs, tmp, None, None, args.n, raw)
    except bench.BenchError as e:
        bench.log(f"error: {e} (logs kept in {tmp})")
        procs.stop_all()
        return 1
    finally:
        procs.stop_all()
    shutil.rmtree(tmp, ignore_errors=True)
    print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(raw) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
