#!/usr/bin/env python3
"""Where a request's CPU goes: the figures behind bench/README.md's profile section.

`make profile` runs `python3 bench/profile.py --build build`. Standard library only; reuses
bench.py's process handling. On loopback, with the backends of `make bench` (one nginx, blue and
green) on the load CPU:

1. User-space instructions per request (valgrind --tool=callgrind, counting only while wrk runs):
   canary-proxy with keep-alive and with a new connection per request, nginx 1.22 (the proxy
   configuration of make bench, master_process off) with keep-alive. Instruction counts do not
   depend on how busy the machine is, unlike timings: this is the figure to compare before and
   after a change to the request path. Also the functions with the most instructions.
2. User and system CPU time per keep-alive request (/proc/PID/stat) of canary-proxy and nginx,
   each pinned to the proxy CPU, interleaved rounds: how much of the CPU is the kernel's.
3. System calls per keep-alive request (perf stat on syscall tracepoints), when perf can read
   them on this machine; skipped with a note otherwise.

Every process it starts is stopped by its own process id; bounded in time (~2 minutes).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (bench.py: processes, ports, configs)

WRK_THREADS = "1"


def wrk(port: int, seconds: float, connections: int, cpu: int | None,
        header: str | None = None) -> int:
    """Requests completed by one wrk run (bounded: `seconds`)."""
    argv = ["wrk", "-t", WRK_THREADS, "-c", str(connections), "-d", f"{seconds}s"]
    if header:
        argv += ["-H", header]
    argv.append(f"http://127.0.0.1:{port}/")
    if cpu is not None:
        argv = ["taskset", "-c", str(cpu)] + argv
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30).stdout
    m = re.search(r"(\d+) requests in", out)
    if not m:
        raise bench.BenchError(f"wrk printed no request count:\n{out}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    if errors:
        raise bench.BenchError(f"wrk saw errors against port {port}:\n{out}")
    return int(m.group(1))


def callgrind_ctl(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], capture_output=True, timeout=30,
                   check=True)


def callgrind_total(path: Path) -> int:
    """The event total of one callgrind dump file."""
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            total = max(total, int(line.split()[1]))
    return total


def measure_instructions(pid: int, out_prefix: Path, port: int, header: str | None,
                         seconds: float) -> tuple[int, int, Path]:
    """(requests, instructions, dump file): counts only while wrk runs."""
    before = set(out_prefix.parent.glob(out_prefix.name + "*"))
    callgrind_ctl(pid, "-z")
    callgrind_ctl(pid, "-i", "on")
    requests = wrk(port, seconds, 16, None, header)
    callgrind_ctl(pid, "-i", "off")
    callgrind_ctl(pid, "-d")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        fresh = sorted(set(out_prefix.parent.glob(out_prefix.name + "*")) - before)
        if fresh:
            time.sleep(0.3)  # let callgrind finish writing
            return requests, callgrind_total(fresh[-1]), fresh[-1]
        time.sleep(0.1)
    raise bench.BenchError("callgrind wrote no dump")


def top_functions(dump: Path, n: int) -> list[tuple[int, str]]:
    out = subprocess.run(["callgrind_annotate", "--threshold=100", str(dump)],
                         capture_output=True, text=True, timeout=60).stdout
    rows = []
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(\S.*)$", line)
        if not m or "PROGRAM TOTALS" in line:
            continue
        name = m.group(2)
        name = re.sub(r"^[^:]*:", "", name, count=1)  # file:function -> function
        name = re.sub(r"\s*\[[^\]]*\]$", "", name)   # drop [object]
        rows.append((int(m.group(1).replace(",", "")), name))
    return rows[:n]


def short(name: str, width: int = 110) -> str:
    name = name.replace("(anonymous namespace)", "{anonymous}")
    name = re.sub(r"\(.*", "(…)", name, count=1)  # drop argument lists
    return name if len(name) <= width else name[: width - 1] + "…"


def cpu_split(pids: list[int], port: int, cpu: int | None, seconds: float) -> tuple[float, float]:
    """(user, system) µs per request over one wrk run against `port`."""
    def ticks() -> tuple[int, int]:
        u = s = 0
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            u += int(fields[11])
            s += int(fields[12])
        return u, s
    wrk(port, 1, 64, cpu)
    u0, s0 = ticks()
    n = wrk(port, seconds, 64, cpu)
    u1, s1 = ticks()
    scale = 1e6 / bench.CLK_TCK / n
    return (u1 - u0) * scale, (s1 - s0) * scale


SYSCALLS = ["sendto", "recvfrom", "writev", "readv", "read", "write", "epoll_wait", "epoll_ctl",
            "setsockopt", "ioctl"]


def syscalls_per_request(pid: int, port: int, cpu: int | None, seconds: float
                         ) -> dict[str, float] | str:
    """Syscalls per request of process `pid` (all its threads), or why they could not be
    counted."""
    if not shutil.which("perf"):
        return "perf is not installed (Debian: linux-perf)"
    events = [f"syscalls:sys_enter_{s}" for s in SYSCALLS]
    argv = ["perf", "stat", "-x", ",", "-e", ",".join(events),
            "-e", "syscalls:sys_exit_recvfrom", "--filter", "ret == -11", "-p", str(pid)]
    perf = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        time.sleep(0.5)
        if perf.poll() is not None:
            err = (perf.stderr.read() if perf.stderr else "").strip().splitlines()
            return "perf stat cannot read syscall tracepoints here" + \
                (f": {err[-1]}" if err else "")
        n = wrk(port, seconds, 64, cpu)
    finally:
        if perf.poll() is None:
            os.killpg(perf.pid, signal.SIGINT)
        try:
            _, err = perf.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(perf.pid, signal.SIGKILL)
            _, err = perf.communicate()
    counts: dict[str, float] = {}
    for line in err.splitlines():
        parts = line.split(",")
        if len(parts) < 3 or not parts[0].strip().isdigit():
            continue
        ev = parts[2]
        name = ev.replace("syscalls:sys_enter_", "")
        if ev == "syscalls:sys_exit_recvfrom":
            name = "recvfrom → EAGAIN"
        counts[name] = int(parts[0]) / n
    if not counts:
        return "perf stat printed no counts: " + " ".join(err.split()[-12:])
    return {k: v for k, v in counts.items() if v >= 0.005}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build", help="build directory (default: build)")
    ap.add_argument("--seconds", type=float, default=4, help="seconds per measured wrk run")
    ap.add_argument("--rounds", type=int, default=6, help="rounds of the CPU split (default 6)")
    ap.add_argument("--top", type=int, default=20, help="functions listed (default 20)")
    ap.add_argument("--proxy-cpu", type=int, default=0)
    ap.add_argument("--load-cpu", type=int, default=1)
    ap.add_argument("--out", default=str(bench.BENCH_DIR / "results" / "profile.md"))
    args = ap.parse_args(argv)
    for tool in ("valgrind", "callgrind_control", "callgrind_annotate", "wrk", "nginx"):
        if not shutil.which(tool):
            print(f"profile: {tool} is missing (make profile installs it)", file=sys.stderr)
            return 2
    binary = bench.resolve_build(args.build) / "bin" / "canary-proxy"
    if not binary.exists():
        print(f"profile: {binary} is missing (make build)", file=sys.stderr)
        return 2
    if os.cpu_count() and os.cpu_count() < 2:
        args.proxy_cpu = args.load_cpu = None

    procs = bench.Processes()
    tmp = Path(tempfile.mkdtemp(prefix="canary-profile-"))
    os.chmod(tmp, 0o755)
    started = time.monotonic()
    try:
        ports = dict(zip(["blue", "green", "canary", "canary_admin", "nginx", "cg", "cg_admin",
                          "cg_nginx"], bench.free_ports(8)))
        limits = {"NOFILE": 4096, "MAXCONN": 4096, "WORKER_CONNECTIONS": 4096}
        www = tmp / "www"
        www.mkdir()
        (www / "1m.bin").write_bytes(b"x")
        os.chmod(www, 0o755)
        bdir = tmp / "backends"
        bdir.mkdir()
        bconf = bench.render("backends.nginx.conf", bdir / "nginx.conf", {
            "TMP": bdir, "WWW": www, "BLUE_PORT": ports["blue"], "GREEN_PORT": ports["green"],
            **limits})
        bp = procs.start("backends", ["nginx", "-p", f"{bdir}/", "-c", str(bconf), "-e",
                                      str(bdir / "error.log")], args.load_cpu, bdir / "log",
                         cwd=bdir)
        bench.wait_port(ports["blue"], bp, "backend nginx", bdir / "log")
        bench.wait_port(ports["green"], bp, "backend nginx", bdir / "log")

        def canary_config(name: str, port: int, admin: int) -> Path:
            d = tmp / name
            d.mkdir()
            return bench.render("canary-proxy.yaml", d / "canary-proxy.yaml", {
                "PORT": port, "ADMIN_PORT": admin, "TMP": d, "BLUE_PORT": ports["blue"],
                "GREEN_PORT": ports["green"], **limits})

        def nginx_config(name: str, port: int, master: bool) -> tuple[Path, Path]:
            d = tmp / name
            d.mkdir()
            conf = bench.render("proxy.nginx.conf", d / "nginx.conf", {
                "PORT": port, "TMP": d, "BLUE_PORT": ports["blue"],
                "GREEN_PORT": ports["green"], **limits})
            if not master:
                conf.write_text(conf.read_text().replace("master_process on;",
                                                         "master_process off;"))
            return d, conf

        def start_rollout(admin: int) -> None:
            status, _, body = bench.http_request(admin, "PUT", "/api/v1/rollouts/bench/upstream",
                                                 body=b'{"upstream":"green"}')
            if status != 200:
                raise bench.BenchError(f"PUT upstream -> {status}: {body[:200]!r}")

        # 1. Instructions per request under callgrind.
        bench.log("callgrind: canary-proxy")
        cg_dir = tmp / "callgrind"
        cg_dir.mkdir()
        conf = canary_config("cg", ports["cg"], ports["cg_admin"])
        cp = procs.start("canary-proxy (callgrind)", [
            "valgrind", "--tool=callgrind", "--instr-atstart=no",
            f"--callgrind-out-file={cg_dir}/canary.out", str(binary), "--config", str(conf)],
            None, tmp / "cg" / "log")
        bench.wait_port(ports["cg_admin"], cp, "canary-proxy under valgrind", tmp / "cg" / "log",
                        timeout=60)
        start_rollout(ports["cg_admin"])
        wrk(ports["cg"], 2, 16, None)  # warm up (pools, caches)
        ka = measure_instructions(cp.pid, cg_dir / "canary.out", ports["cg"], None, args.seconds)
        nc = measure_instructions(cp.pid, cg_dir / "canary.out", ports["cg"],
                                  "Connection: close", args.seconds)
        procs.stop(cp)

        bench.log("callgrind: nginx")
        ndir, nconf = nginx_config("cg-nginx", ports["cg_nginx"], master=False)
        np_ = procs.start("nginx (callgrind)", [
            "valgrind", "--tool=callgrind", "--instr-atstart=no",
            f"--callgrind-out-file={cg_dir}/nginx.out", "nginx", "-p", f"{ndir}/", "-c",
            str(nconf), "-e", str(ndir / "error.log")], None, ndir / "log")
        bench.wait_port(ports["cg_nginx"], np_, "nginx under valgrind", ndir / "log", timeout=60)
        wrk(ports["cg_nginx"], 2, 16, None)
        nka = measure_instructions(np_.pid, cg_dir / "nginx.out", ports["cg_nginx"], None,
                                   args.seconds)
        procs.stop(np_)
        top = top_functions(ka[2], args.top)

        # 2. and 3. CPU split and syscalls, pinned like make bench.
        bench.log("CPU split and syscalls")
        conf = canary_config("canary", ports["canary"], ports["canary_admin"])
        cpx = procs.start("canary-proxy", [str(binary), "--config", str(conf)], args.proxy_cpu,
                          tmp / "canary" / "log")
        bench.wait_port(ports["canary_admin"], cpx, "canary-proxy", tmp / "canary" / "log")
        start_rollout(ports["canary_admin"])
        ndir, nconf = nginx_config("nginx", ports["nginx"], master=True)
        nx = procs.start("nginx", ["nginx", "-p", f"{ndir}/", "-c", str(nconf), "-e",
                                   str(ndir / "error.log")], args.proxy_cpu, ndir / "log")
        bench.wait_port(ports["nginx"], nx, "nginx", ndir / "log")
        nginx_pids = [nx.pid] + procs.remember_children(nx)
        split: dict[str, list[tuple[float, float]]] = {"canary-proxy": [], "nginx": []}
        for _ in range(args.rounds):
            split["canary-proxy"].append(cpu_split([cpx.pid], ports["canary"], args.load_cpu,
                                                   args.seconds))
            split["nginx"].append(cpu_split(nginx_pids, ports["nginx"], args.load_cpu,
                                            args.seconds))
        worker = procs.remember_children(nx)
        sys_canary = syscalls_per_request(cpx.pid, ports["canary"], args.load_cpu, args.seconds)
        sys_nginx = (syscalls_per_request(worker[0], ports["nginx"], args.load_cpu, args.seconds)
                     if worker else "no nginx worker found")
    except bench.BenchError as e:
        print(f"profile: {e}", file=sys.stderr)
        return 1
    finally:
        procs.stop_all()

    # Report.
    L = [f"# canary-proxy profile — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", ""]
    L.append(f"`python3 bench/profile.py` ({time.monotonic() - started:.0f} s); loopback, "
             "backends of `make bench`, a rollout at weight 20 (80/20).")
    L.append("")
    L.append("**User-space instructions per request** (callgrind, counted only while "
             f"`wrk -t1 -c16 -d{args.seconds:g}s` runs):")
    L.append("")
    L.append("| proxy | scenario | requests | instructions / request |")
    L.append("|---|---|--:|--:|")
    L.append(f"| canary-proxy | keep-alive | {ka[0]:,} | {ka[1] // ka[0]:,} |")
    L.append(f"| canary-proxy | new connection per request | {nc[0]:,} | {nc[1] // nc[0]:,} |")
    L.append(f"| nginx | keep-alive | {nka[0]:,} | {nka[1] // nka[0]:,} |")
    L.append("")
    L.append(f"**Where canary-proxy's go** (keep-alive; self instructions per request, top "
             f"{len(top)}):")
    L.append("")
    L.append("| per request | % | function |")
    L.append("|--:|--:|---|")
    for ir, name in top:
        L.append(f"| {ir / ka[0]:,.0f} | {100 * ir / ka[1]:.1f} | `{short(name)}` |")
    L.append("")
    L.append("**User and system CPU per keep-alive request** (µs, /proc/PID/stat; pinned as in "
             f"`make bench`, wrk -c64, {args.rounds} interleaved rounds, medians):")
    L.append("")
    L.append("| proxy | user | system | total | system share |")
    L.append("|---|--:|--:|--:|--:|")
    med = {}
    for name, rows in split.items():
        u = statistics.median(r[0] for r in rows)
        s = statistics.median(r[1] for r in rows)
        med[name] = (u, s)
        L.append(f"| {name} | {u:.2f} | {s:.2f} | {u + s:.2f} | {100 * s / (u + s):.0f} % |")
    cu, cs = med["canary-proxy"]
    nu, ns = med["nginx"]
    L.append("")
    L.append(f"CPU ratio canary-proxy ÷ nginx: {(cu + cs) / (nu + ns):.2f}; with no user-space "
             f"cost at all it would be {cs / (nu + ns):.2f} (the kernel's part bounds it).")
    L.append("")
    L.append("**System calls per keep-alive request** (perf stat on syscall tracepoints, "
             "wrk -c64):")
    L.append("")
    for name, res in (("canary-proxy", sys_canary), ("nginx worker", sys_nginx)):
        if isinstance(res, str):
            L.append(f"- {name}: not counted — {res}")
        else:
            L.append(f"- {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in res.items()))
    report = "\n".join(L) + "\n"
    print(report)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report)
    bench.log(f"wrote {args.out}")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
