#!/usr/bin/env python3
"""make test-compose: the compose demo for real, against a running Docker engine.

1. the base images the Dockerfiles name (scripts/docker-base-images.sh: pulled, or built with
   debootstrap when Docker Hub cannot be reached);
2. `docker-compose build` (canary-proxy:local, and Prometheus from Debian's package);
3. `up -d proxy blue green prometheus` under a project name of its own, every port published on
   127.0.0.1 on a free port Docker picks;
4. through the published ports: everything blue; `canaryctl set-upstream canary-demo green` run
   inside the proxy container (with the admin token secret) gives exactly 80/20 on one
   keep-alive connection (one worker); `X-Canary: always` gives green; `canaryctl promote` gives
   50/50, `promote --full` all green; Prometheus scrapes the proxy (target up, request series);
5. `docker-compose down -v` always, failure or not.

Bounded: every docker command has a timeout, the whole run a deadline (--deadline, default
50 min, most of it the image build: it compiles the proxy). Prints how long each stage took.
"""

import argparse
import http.client
import json
import os
import pathlib
import subprocess
import sys
import time
import urllib.parse

SOURCE = pathlib.Path(__file__).resolve().parents[2]
ROUTE = "canary-demo"
SERVICES = ["proxy", "blue", "green", "prometheus"]
START = time.monotonic()


class Failure(Exception):
    pass


def say(msg):
    print(f"[compose {time.monotonic() - START:6.1f}s] {msg}", flush=True)


class Compose:
    def __init__(self, project, deadline):
        self.project = project
        self.deadline = time.monotonic() + deadline
        # Empty host ports: Docker picks free ones (docker-compose.yml: "127.0.0.1:${VAR-...}").
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("COMPOSE_") and k != "CANARY_ADMIN_TOKEN_FILE"}
        self.env.update(CANARY_HTTP_PORT="", CANARY_ADMIN_PORT="", CANARY_PROMETHEUS_PORT="")

    def left(self, cap):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Failure("deadline reached")
        return min(cap, left)

    def run(self, *args, timeout=120, check=True, capture=True):
        cmd = ["docker-compose", "--project-directory", str(SOURCE), "-f",
               str(SOURCE / "docker-compose.yml"), "-p", self.project, *args]
        try:
            p = subprocess.run(cmd, env=self.env, text=True, timeout=self.left(timeout),
                               stdin=subprocess.DEVNULL,
                               capture_output=capture)
        except subprocess.TimeoutExpired:
            raise Failure(f"timed out: {' '.join(args)}")
        if check and p.returncode != 0:
            raise Failure(f"docker-compose {' '.join(args)} exited {p.returncode}:\n"
                          f"{(p.stdout or '')[-3000:]}{(p.stderr or '')[-3000:]}")
        return p

    def port(self, service, container_port):
        out = self.run("port", service, str(container_port)).stdout.strip()
        host, _, port = out.rpartition(":")
        if host != "127.0.0.1" or not port.isdigit():
            raise Failure(f"{service}:{container_port} published as {out!r}, not on 127.0.0.1")
        return int(port)

    def canaryctl(self, *args):
        p = self.run("exec", "-T", "proxy", "canaryctl", "--token-file",
                     "/run/secrets/admin_token", *args, timeout=60)
        say("canaryctl " + " ".join(args) + ": " + p.stdout.strip().splitlines()[0])
        return p.stdout


def poll(fn, what, timeout, interval=0.5):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            v = fn()
            if v:
                return v
        except (OSError, http.client.HTTPException, ValueError, KeyError) as e:
            last = e
        time.sleep(interval)
    raise Failure(f"{what}: not within {timeout}s (last error: {last!r})")


def get(port, path, headers=None, conn=None, timeout=5):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        if conn is None:
            c.close()


def colors(port, n, headers=None):
    """Colour -> count over n requests on one keep-alive connection (one proxy worker)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    out = {}
    try:
        for _ in range(n):
            status, body = get(port, "/color", headers, conn=c)
            key = json.loads(body) if status == 200 else str(status)
            out[key] = out.get(key, 0) + 1
    finally:
        c.close()
    return out


def expect(got, want, what):
    if got != want:
        raise Failure(f"{what}: expected {want}, got {got}")
    say(f"ok: {what}: {got}")


def scenario(dc, timings):
    t = time.monotonic()
    dc.run("up", "-d", "--no-build", *SERVICES, timeout=300)
    admin = dc.port("proxy", 9901)
    app = dc.port("proxy", 8080)
    prom = dc.port("prometheus", 9090)
    poll(lambda: get(admin, "/healthz")[0] == 200, "proxy /healthz", 120)
    timings["up"] = time.monotonic() - t
    say(f"up: app 127.0.0.1:{app}, admin 127.0.0.1:{admin}, prometheus 127.0.0.1:{prom}")

    t = time.monotonic()
    expect(colors(app, 20), {"blue": 20}, "before the rollout")
    out = dc.canaryctl("set-upstream", ROUTE, "green")
    if "weight 20" not in out:
        raise Failure(f"set-upstream: {out}")
    expect(colors(app, 100), {"blue": 80, "green": 20}, "setWeight 20, one connection")
    expect(colors(app, 10, {"X-Canary": "always"}), {"green": 10}, "X-Canary: always")
    expect(colors(app, 10, {"X-Canary": "never"}), {"blue": 10}, "X-Canary: never")
    dc.canaryctl("promote", ROUTE)
    expect(colors(app, 100), {"blue": 50, "green": 50}, "promoted to setWeight 50")
    dc.canaryctl("promote", ROUTE, "--full")
    out = dc.canaryctl("get", ROUTE)
    if "Healthy" not in out or "green" not in out:
        raise Failure(f"after promote --full: {out}")
    expect(colors(app, 20), {"green": 20}, "fully promoted")
    timings["rollout"] = time.monotonic() - t

    t = time.monotonic()

    def scraped():
        q = urllib.parse.urlencode({"query": f'canary_proxy_requests_total{{route="{ROUTE}"}}'})
        status, body = get(prom, "/api/v1/query?" + q)
        series = json.loads(body)["data"]["result"] if status == 200 else []
        return {s["metric"].get("variant") for s in series} >= {"stable", "canary"}
    poll(lambda: get(prom, "/-/ready")[0] == 200, "prometheus /-/ready", 60)
    poll(scraped, "prometheus has the proxy's request series of both variants", 60)
    status, body = get(prom, "/api/v1/targets")
    active = json.loads(body)["data"]["activeTargets"]
    if len(active) != 1 or active[0]["health"] != "up":
        raise Failure(f"prometheus targets: {active}")
    say(f"ok: prometheus scrapes {active[0]['scrapeUrl']} (up)")
    timings["prometheus"] = time.monotonic() - t


def main():
    ap = argparse.ArgumentParser(description="compose demo test (needs a Docker engine)")
    ap.add_argument("--deadline", type=int, default=3000, help="whole run, seconds")
    ap.add_argument("--project", default=f"canary-compose-test-{os.getpid()}")
    ap.add_argument("--reuse-proxy-image", action="store_true",
                    help="use the canary-proxy:local image as it is (local iterations only)")
    args = ap.parse_args()
    dc = Compose(args.project, args.deadline)
    timings = {}
    rc = 0
    try:
        p = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
        if p.returncode != 0:
            raise Failure("no Docker engine (start dockerd): " + p.stderr.strip()[-500:])
        t = time.monotonic()
        subprocess.run([str(SOURCE / "scripts" / "docker-base-images.sh")], check=True,
                       timeout=dc.left(1200))
        timings["base images"] = time.monotonic() - t
        t = time.monotonic()
        # blue and green run the proxy's image (canary-proxy:local): building `proxy` builds it
        # once, where `build` would build it once per service.
        services = ["prometheus"] if args.reuse_proxy_image else ["proxy", "prometheus"]
        say(f"docker-compose build {' '.join(services)} (the proxy compiles in its image)")
        dc.run("build", *services, timeout=2400, capture=False)
        timings["build"] = time.monotonic() - t
        scenario(dc, timings)
        say("PASS")
    except (Failure, subprocess.SubprocessError) as e:
        say(f"FAIL: {e}")
        try:
            logs = dc.run("logs", "--no-color", "--tail", "40", timeout=60, check=False)
            print(logs.stdout[-6000:])
        except Failure:
            pass
        rc = 1
    finally:
        t = time.monotonic()
        dc.deadline = max(dc.deadline, time.monotonic() + 180)  # down gets its time regardless
        try:
            dc.run("down", "-v", "--remove-orphans", "--timeout", "20", timeout=150)
        except Failure as e:
            say(f"down failed: {e}")
            rc = 1
        timings["down"] = time.monotonic() - t
        say("timings: " + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items()) +
            f"; total {time.monotonic() - START:.0f}s")
    sys.exit(rc)


if __name__ == "__main__":
    main()
