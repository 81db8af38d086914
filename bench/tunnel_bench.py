#!/usr/bin/env python3
"""Scenario (j) of bench.py: upgrade-tunnel echo throughput (what a WebSocket echo costs the
proxy), through canary-proxy against a direct connection to the same echo server.

The echo server answers an HTTP/1.1 Upgrade with 101 and then echoes raw bytes; the client opens
CONNECTIONS such tunnels and keeps one MESSAGE-byte write in flight on each, reading the echo back
before the next. After the 101 the proxy relays bytes without looking at them, so WebSocket
framing would change nothing on its side. Echo server and client run on the load CPU, the proxy
(one worker) on the proxy CPU. Figures: MB/s each way (direct and proxied, interleaved rounds,
medians) and the proxy's CPU per MiB relayed (each MiB is read and written once per direction).

Standard library only. `python3 bench/tunnel_bench.py serve PORT` and `... client PORT SECONDS`
are the two halves; run() drives them (from bench.py). Every process is stopped by its own id.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CONNECTIONS = 8
MESSAGE = 64 * 1024
UPGRADE = (b"GET /tunnel HTTP/1.1\r\nHost: bench\r\nConnection: Upgrade\r\n"
           b"Upgrade: websocket\r\n\r\n")
SWITCHED = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"


async def serve(port: int) -> None:
    async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(SWITCHED)
            while data := await reader.read(256 * 1024):
                writer.write(data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(one, "127.0.0.1", port, backlog=128)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


async def client(port: int, seconds: float) -> dict:
    payload = os.urandom(MESSAGE)
    moved = 0
    deadline = time.monotonic() + seconds

    async def one() -> None:
        nonlocal moved
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(UPGRADE)
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"no 101: {head[:200]!r}")
        while time.monotonic() < deadline:
            writer.write(payload)
            await reader.readexactly(MESSAGE)
            moved += MESSAGE
        writer.close()

    t0 = time.monotonic()
    await asyncio.gather(*(one() for _ in range(CONNECTIONS)))
    return {"bytes": moved, "seconds": time.monotonic() - t0}


def run(bench, binary: Path, procs, tmp: Path, proxy_cpu, load_cpu, rounds: int,
        seconds: float) -> str:
    """One markdown line for bench.py's report (bench is the bench module)."""
    d = tmp / "tunnel"
    d.mkdir()
    echo_port, proxy_port, admin_port = bench.free_ports(3)
    me = [sys.executable, str(Path(__file__).resolve())]
    echo = procs.start("tunnel echo server", me + ["serve", str(echo_port)], load_cpu,
                       d / "echo.log")
    bench.wait_port(echo_port, echo, "tunnel echo server", d / "echo.log")
    conf = d / "canary-proxy.yaml"
    conf.write_text(
        f'listen: "127.0.0.1:{proxy_port}"\nworkers: 1\n'
        f'admin:\n  listen: "127.0.0.1:{admin_port}"\nstate_file: "{d}/state.json"\n'
        f'upstreams:\n  echo:\n    endpoints: ["127.0.0.1:{echo_port}"]\n'
        f'routes:\n  - name: tunnel\n    path_prefix: "/"\n    upstream: echo\n'
        f'    steps:\n      - setWeight: 0\n      - pause: {{}}\n')
    proxy = procs.start("canary-proxy (tunnel)", [str(binary), "--config", str(conf)],
                        proxy_cpu, d / "proxy.log", cwd=d)
    bench.wait_port(proxy_port, proxy, "canary-proxy (tunnel)", d / "proxy.log")

    def measure(port: int) -> tuple[float, int]:
        argv = me + ["client", str(port), str(seconds)]
        if load_cpu is not None:
            argv = ["taskset", "-c", str(load_cpu)] + argv
        r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
        if r.returncode != 0:
            raise bench.BenchError(f"tunnel client failed:\n{r.stdout}{r.stderr}")
        j = json.loads(r.stdout.strip().splitlines()[-1])
        return j["bytes"] / j["seconds"] / bench.ONE_MB, j["bytes"]

    direct, proxied, cpu_per_mib = [], [], []
    try:
        for _ in range(rounds):
            direct.append(measure(echo_port)[0])
            before = bench.cpu_ticks([proxy.pid])
            mbps, moved = measure(proxy_port)
            after = bench.cpu_ticks([proxy.pid])
            proxied.append(mbps)
            if None not in (before, after) and moved:
                cpu_per_mib.append((after - before) / bench.CLK_TCK * 1e6 / (moved / bench.ONE_MB))
    finally:
        procs.stop(proxy)
        procs.stop(echo)
    dm, pm = statistics.median(direct), statistics.median(proxied)
    cpu = statistics.median(cpu_per_mib) if cpu_per_mib else float("nan")
    return (f"(j) upgrade-tunnel echo, {CONNECTIONS} tunnels x {MESSAGE // 1024} KiB messages, "
            f"{rounds} rounds x {seconds:g}s: direct {dm:.0f} MB/s, through canary-proxy "
            f"{pm:.0f} MB/s ({pm / dm:.2f}x direct), proxy CPU {cpu:.0f} us per MiB echoed "
            f"(the client and the echo server share the load CPU)")


def main() -> int:
    if len(sys.argv) >= 3 and sys.argv[1] == "serve":
        asyncio.run(serve(int(sys.argv[2])))
        return 0
    if len(sys.argv) >= 4 and sys.argv[1] == "client":
        print(json.dumps(asyncio.run(client(int(sys.argv[2]), float(sys.argv[3])))))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
