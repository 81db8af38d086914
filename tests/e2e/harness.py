"""Shared helpers for the end-to-end tests (Python 3 stdlib only).

The tests drive the real binaries (`canary-proxy`, `canaryctl`, `demo-backend`) found in
$CANARY_BIN_DIR (default: <repo>/build/bin) on 127.0.0.1 only. Every process a test starts and
every temporary directory it creates is registered with addCleanup, so they go away also when
the test fails. Nothing waits a fixed time where a readiness poll works: `poll()` retries a
check until a deadline.
"""

import collections
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
BIN_DIR = os.environ.get("CANARY_BIN_DIR") or os.path.join(REPO_ROOT, "build", "bin")
DEMO_CONFIG = os.path.join(REPO_ROOT, "config", "canary-demo.yaml")

# Default deadline of every readiness poll, in seconds.
DEADLINE = 10.0
# Socket timeout of every HTTP call.
IO_TIMEOUT = 10.0

# The demo steps of docs/config-reference.md with short pauses, so a whole rollout runs in a few
# seconds.
SHORT_STEPS = [
    {"setWeight": 20},
    {"pause": {}},
    {"setWeight": 50},
    {"pause": {"duration": "2s"}},
    {"setWeight": 70},
    {"pause": {"duration": "1s"}},
]


def binary(name):
    path = os.path.join(BIN_DIR, name)
    if not os.access(path, os.X_OK):
        raise AssertionError(
            f"binary {path} not found: build it first, or set CANARY_BIN_DIR to the build's bin/")
    return path


def poll(check, timeout=DEADLINE, interval=0.02, what="a condition"):
    """Calls check() until it returns a truthy value (returned) or the deadline passes."""
    deadline = time.monotonic() + timeout
    last = None
    last_exc = None
    while True:
        try:
            last = check()
            last_exc = None
            if last:
                return last
        except (OSError, http.client.HTTPException, ValueError) as e:
            last_exc = e
        if time.monotonic() >= deadline:
            detail = f"last exception: {last_exc!r}" if last_exc else f"last value: {last!r}"
            raise AssertionError(f"timed out after {timeout}s waiting for {what} ({detail})")
        time.sleep(interval)


def closed_port():
    """A 127.0.0.1 port nothing listens on: bind a socket to port 0, note the port, close it."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


# ---------------------------------------------------------------- YAML (a small block emitter)

def _scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid double-quoted YAML scalar
    if isinstance(v, dict) and not v:
        return "{}"
    if isinstance(v, list) and not v:
        return "[]"
    return None


def to_yaml(value, indent=0):
    pad = "  " * indent
    lines = []
    if isinstance(value, dict):
        for k, v in value.items():
            s = _scalar(v)
            if s is not None:
                lines.append(f"{pad}{k}: {s}")
            else:
                lines.append(f"{pad}{k}:")
                lines.append(to_yaml(v, indent + 1))
    elif isinstance(value, list):
        for v in value:
            s = _scalar(v)
            if s is not None:
                lines.append(f"{pad}- {s}")
            else:
                sub = to_yaml(v, indent + 1)
                lines.append(pad + "- " + sub[len(pad) + 2:])
    else:
        raise TypeError(f"cannot emit {value!r} at the top level")
    return "\n".join(lines)


def route(name="canary-demo", upstream="blue", steps=None, canary=None, hosts=None,
          path_prefix="/"):
    r = {"name": name}
    if hosts is not None:
        r["hosts"] = hosts
    r["path_prefix"] = path_prefix
    r["upstream"] = upstream
    if canary is not None:
        r["canary"] = canary
    r["steps"] = SHORT_STEPS if steps is None else steps
    return r


def make_config(upstreams, routes, workers=1, token_file=None, state_file="state.json",
                timeouts=None, extra=None):
    """A config dict: `upstreams` maps a name to a list of endpoints (or one endpoint)."""
    cfg = {
        "listen": "127.0.0.1:0",
        "workers": workers,
        "admin": {"listen": "127.0.0.1:0"},
        "state_file": state_file,
        "timeouts": {"upstream_connect": "1s", "drain": "2s"},
    }
    if token_file:
        cfg["admin"]["token_file"] = token_file
    if timeouts:
        cfg["timeouts"].update(timeouts)
    if extra:
        cfg.update(extra)
    cfg["upstreams"] = {
        name: {"endpoints": eps if isinstance(eps, list) else [eps]}
        for name, eps in upstreams.items()
    }
    cfg["routes"] = routes
    return cfg


_port0 = None


def listen_port_0_supported():
    """Whether the proxy accepts `listen: 127.0.0.1:0` (asked once with --check)."""
    global _port0
    if _port0 is None:
        d = tempfile.mkdtemp(prefix="canary-e2e-port0-")
        try:
            path = os.path.join(d, "c.yaml")
            with open(path, "w") as f:
                f.write(to_yaml(make_config({"blue": "127.0.0.1:9"}, [route(steps=[])])) + "\n")
            r = subprocess.run([binary("canary-proxy"), "--config", path, "--check"],
                               capture_output=True, text=True, timeout=DEADLINE)
            _port0 = r.returncode == 0
        finally:
            shutil.rmtree(d, ignore_errors=True)
    return _port0


def concrete_ports(config):
    """When the proxy refuses port 0, replace it with free ports picked here (racy, but it
    lets the other tests run; test_config_check reports the missing port-0 support)."""
    if listen_port_0_supported() or not isinstance(config, dict):
        return config
    import copy
    config = copy.deepcopy(config)
    if config.get("listen") == "127.0.0.1:0":
        config["listen"] = f"127.0.0.1:{closed_port()}"
    admin = config.get("admin") or {}
    if admin.get("listen") == "127.0.0.1:0":
        admin["listen"] = f"127.0.0.1:{closed_port()}"
    return config


# ---------------------------------------------------------------- processes

class LineReader(threading.Thread):
    """Reads a pipe line by line in the background, keeping every line."""

    def __init__(self, pipe, name):
        super().__init__(name=name, daemon=True)
        self.pipe = pipe
        self.lines = []
        self.cond = threading.Condition()
        self.eof = False
        self.start()

    def run(self):
        try:
            for raw in iter(self.pipe.readline, b""):
                with self.cond:
                    self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                    self.cond.notify_all()
        except (OSError, ValueError):
            pass
        finally:
            with self.cond:
                self.eof = True
                self.cond.notify_all()

    def text(self):
        with self.cond:
            return "\n".join(self.lines)

    def count(self):
        with self.cond:
            return len(self.lines)

    def wait_for(self, pattern, timeout=DEADLINE, start=0):
        """The first match of `pattern` in a line with index >= start; AssertionError on
        timeout or EOF."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            i = start
            while True:
                while i < len(self.lines):
                    m = rx.search(self.lines[i])
                    if m:
                        return m
                    i += 1
                if self.eof:
                    raise AssertionError(f"stream ended without a line matching {pattern!r}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no line matching {pattern!r} within {timeout}s")
                self.cond.wait(left)


class Process:
    """A child process with both output streams read in the background."""

    def __init__(self, argv, cwd=None, env=None):
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, cwd=cwd, env=env,
                                     start_new_session=True)
        self.stdout = LineReader(self.proc.stdout, f"stdout:{os.path.basename(argv[0])}")
        self.stderr = LineReader(self.proc.stderr, f"stderr:{os.path.basename(argv[0])}")

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def wait(self, timeout=DEADLINE):
        rc = self.proc.wait(timeout)
        self.stdout.join(2)
        self.stderr.join(2)
        return rc

    def kill(self):
        """SIGKILL and reap; safe to call twice."""
        if self.proc.poll() is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            pass
        for f in (self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass

    def log_mark(self):
        return (self.stdout.count(), self.stderr.count())

    def wait_for_log(self, pattern, timeout=DEADLINE, mark=(0, 0)):
        """The first match of `pattern` in a line of stdout or stderr (lines after `mark`).
        spdlog's default logger writes to stdout; accept either stream."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for reader, start in ((self.stdout, mark[0]), (self.stderr, mark[1])):
                with reader.cond:
                    lines = reader.lines[start:]
                for line in lines:
                    m = rx.search(line)
                    if m:
                        return m
            if self.stdout.eof and self.stderr.eof:
                raise AssertionError(f"process ended without a line matching {pattern!r}")
            if time.monotonic() >= deadline:
                raise AssertionError(f"no log line matching {pattern!r} within {timeout}s")
            time.sleep(0.01)

    def output(self):
        return (f"--- {' '.join(self.argv)}\n--- stdout:\n{self.stdout.text()}\n"
                f"--- stderr:\n{self.stderr.text()}")


class Backend:
    """demo-backend on 127.0.0.1:<free port>."""

    def __init__(self, color, args=()):
        self.color = color
        self.process = Process([binary("demo-backend"), "--listen", "127.0.0.1:0", "--color",
                                color, *args])
        m = self.process.stdout.wait_for(
            r"demo-backend \S+ listening on 127\.0\.0\.1:(\d+)", DEADLINE)
        self.port = int(m.group(1))
        self.endpoint = f"127.0.0.1:{self.port}"

    def stop(self):
        self.process.kill()


# ---------------------------------------------------------------- HTTP

class HeaderList:
    """Case-insensitive lookup over `self.headers`, a list of (name, value) in received order."""

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]


class Reply(HeaderList):
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # list of (name, value)
        self.body = body        # bytes

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Reply {self.status} {self.body[:300]!r}>"


def http_call(port, method, path, body=None, headers=None, timeout=IO_TIMEOUT):
    """One request on a fresh connection to 127.0.0.1:port."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        hdrs = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode()
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        return Reply(r.status, r.getheaders(), r.read())
    finally:
        conn.close()


def raw_exchange(port, data, timeout=IO_TIMEOUT):
    """Sends raw bytes, reads until the server closes; returns the parsed (first) response."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            if not b:
                break
            chunks.append(b)
    return parse_response(b"".join(chunks))


def _dechunk(body):
    out = b""
    while True:
        line, _, rest = body.partition(b"\r\n")
        size = int(line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            return out
        out += rest[:size]
        body = rest[size + 2:]


def parse_response(raw):
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise AssertionError(f"incomplete HTTP response: {raw[:500]!r}")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.append((k.strip(), v.strip()))
    r = Reply(status, headers, body)
    te = r.header("Transfer-Encoding")
    if te and "chunked" in te.lower():
        r.body = _dechunk(body)
    elif r.header("Content-Length") is not None:
        r.body = body[: int(r.header("Content-Length"))]
    return r


class DataClient:
    """One keep-alive connection to the data plane."""

    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=IO_TIMEOUT)

    def request(self, method, path, headers=None, body=None):
        self.conn.request(method, path, body=body, headers=headers or {})
        r = self.conn.getresponse()
        return Reply(r.status, r.getheaders(), r.read())

    def color(self, path="/color", headers=None):
        r = self.request("GET", path, headers)
        if r.status != 200:
            raise AssertionError(f"GET {path} -> {r.status} {r.text!r}")
        return json.loads(r.body)

    def close(self):
        self.conn.close()


def colors(port, n, headers=None, path="/color", time_limit=30.0):
    """Counter of the colours of n GETs of /color on one keep-alive connection."""
    c = collections.Counter()
    client = DataClient(port)
    deadline = time.monotonic() + time_limit
    try:
        for _ in range(n):
            if time.monotonic() > deadline:
                raise AssertionError(f"{n} requests took longer than {time_limit}s")
            c[client.color(path, headers)] += 1
    finally:
        client.close()
    return c


class SSEClient:
    """A text/event-stream reader over a raw socket."""

    def __init__(self, port, path, headers=None, timeout=IO_TIMEOUT):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                          f"Accept: text/event-stream\r\n{extra}\r\n".encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            b = self.sock.recv(65536)
            if not b:
                raise AssertionError(f"watch stream closed before its head: {self.buf!r}")
            self.buf += b
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ")[1])
        self.headers = [tuple(x.strip() for x in l.partition(":")[::2]) for l in lines[1:]]

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def next_event(self, timeout=DEADLINE):
        """(event type, data) of the next dispatched event; comments (': ping') skipped."""
        deadline = time.monotonic() + timeout
        while True:
            while b"\n\n" in self.buf:
                block, _, self.buf = self.buf.partition(b"\n\n")
                etype, data = "message", []
                for line in block.decode("utf-8").split("\n"):
                    if line.startswith(":"):
                        continue
                    k, _, v = line.partition(":")
                    v = v[1:] if v.startswith(" ") else v
                    if k == "event":
                        etype = v
                    elif k == "data":
                        data.append(v)
                if data:
                    return etype, "\n".join(data)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no server-sent event within {timeout}s")
            self.sock.settimeout(left)
            b = self.sock.recv(65536)
            if not b:
                raise AssertionError("watch stream closed")
            self.buf += b

    def next_status(self, timeout=DEADLINE):
        etype, data = self.next_event(timeout)
        if etype != "status":
            raise AssertionError(f"expected an event of type status, got {etype!r}: {data!r}")
        return json.loads(data)

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------- the proxy

PROXY_LISTEN_RX = r"proxy listening on 127\.0\.0\.1:(\d+) \((\d+) workers?\)"
ADMIN_LISTEN_RX = r"admin listening on 127\.0\.0\.1:(\d+)"


class Proxy:
    """canary-proxy with a config file in `workdir`; start()/restart() parse the ports."""

    def __init__(self, workdir, config, filename="canary-proxy.yaml"):
        self.workdir = workdir
        self.config_path = os.path.join(workdir, filename)
        self.process = None
        self.port = None
        self.admin_port = None
        self.history = []  # every Process started, for diagnostics
        self.write_config(config)

    def write_config(self, config):
        config = concrete_ports(config)
        text = config if isinstance(config, str) else to_yaml(config) + "\n"
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.config_path)
        self.config = config

    @property
    def state_path(self):
        return os.path.join(self.workdir, "state.json")

    def launch(self):
        """Starts the proxy process; subclasses change how (limits, namespaces)."""
        return Process([binary("canary-proxy"), "--config", self.config_path])

    def start(self):
        if self.process and self.process.alive():
            raise AssertionError("proxy already running")
        self.process = self.launch()
        self.history.append(self.process)
        try:
            m = self.process.wait_for_log(PROXY_LISTEN_RX, DEADLINE)
            self.port = int(m.group(1))
            self.workers = int(m.group(2))
            m = self.process.wait_for_log(ADMIN_LISTEN_RX, DEADLINE)
            self.admin_port = int(m.group(1))
            poll(lambda: self.admin("GET", "/readyz").status == 200, what="GET /readyz -> 200")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.process.output()}") from None
        return self

    def start_expect_failure(self):
        """Starts the proxy expecting it to refuse: returns (exit code, stderr text)."""
        p = Process([binary("canary-proxy"), "--config", self.config_path])
        self.history.append(p)
        try:
            rc = p.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            p.kill()
            raise AssertionError(f"the proxy did not refuse to start\n{p.output()}") from None
        return rc, p.stderr.text() + p.stdout.text()

    def kill9(self):
        self.process.kill()

    def sigterm(self, timeout=DEADLINE):
        self.process.signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def sighup(self):
        self.process.signal(signal.SIGHUP)

    def restart(self, hard=False):
        if hard:
            self.kill9()
        else:
            rc = self.sigterm()
            if rc != 0:
                raise AssertionError(f"SIGTERM exit code {rc}\n{self.process.output()}")
        return self.start()

    def stop(self):
        for p in self.history:
            p.kill()

    def logs(self):
        return "\n".join(p.output() for p in self.history)

    # --- admin API
    @property
    def admin_url(self):
        return f"http://127.0.0.1:{self.admin_port}"

    def admin(self, method, path, body=None, headers=None):
        return http_call(self.admin_port, method, path, body, headers)

    def status(self, name="canary-demo"):
        r = self.admin("GET", f"/api/v1/rollouts/{name}")
        if r.status != 200:
            raise AssertionError(f"GET status of {name}: {r.status} {r.text}")
        return r.json()

    def op(self, name, action, body=None, headers=None, expect=200):
        """POST .../{action} (PUT for weight and upstream); asserts the status code."""
        method = "PUT" if action in ("weight", "upstream") else "POST"
        r = self.admin(method, f"/api/v1/rollouts/{name}/{action}", body, headers)
        if expect is not None and r.status != expect:
            raise AssertionError(f"{method} {action} on {name}: expected {expect}, "
                                 f"got {r.status} {r.text}")
        return r

    def wait_status(self, pred, name="canary-demo", timeout=DEADLINE, what="a status"):
        return poll(lambda: (lambda s: s if pred(s) else None)(self.status(name)),
                    timeout=timeout, what=f"{what} of {name}")

    def events(self, name="canary-demo"):
        r = self.admin("GET", f"/api/v1/rollouts/{name}/events")
        if r.status != 200:
            raise AssertionError(f"GET events: {r.status} {r.text}")
        return r.json()

    # --- data plane
    def colors(self, n, headers=None, path="/color"):
        return colors(self.port, n, headers, path)

    def get(self, path, headers=None):
        return http_call(self.port, "GET", path, headers=headers)


# ---------------------------------------------------------------- the test base class

class E2ETestCase(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="canary-e2e-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def write(self, name, text):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def start_backend(self, color, args=()):
        b = Backend(color, args)
        self.addCleanup(b.stop)
        return b

    def blue_green(self):
        self.blue = self.start_backend("blue")
        self.green = self.start_backend("green")
        return self.blue, self.green

    def new_proxy(self, config):
        p = Proxy(self.tmp, config)
        self.addCleanup(self._dump_logs_on_failure, p)
        self.addCleanup(p.stop)
        return p

    def start_proxy(self, config):
        return self.new_proxy(config).start()

    def demo_proxy(self, steps=None, canary=None, **kw):
        """blue + green backends and a proxy with one route `canary-demo` (upstream blue)."""
        blue, green = self.blue_green()
        cfg = make_config({"blue": blue.endpoint, "green": green.endpoint},
                          [route(steps=steps, canary=canary)], **kw)
        return self.start_proxy(cfg)

    def _dump_logs_on_failure(self, proxy):
        outcome = getattr(self, "_outcome", None)
        failed = False
        if outcome is not None:
            result = getattr(outcome, "result", None)
            if result is not None:
                failed = any(t is self for t, _ in result.failures + result.errors)
            for _, exc in getattr(outcome, "errors", []) or []:  # Python < 3.11
                failed = failed or exc is not None
        if failed or os.environ.get("E2E_VERBOSE"):
            sys.stderr.write(f"\n==== proxy logs of {self.id()} ====\n{proxy.logs()}\n")

    # --- assertions
    def assertStatus(self, reply, code, msg=None):
        self.assertEqual(reply.status, code, msg or f"unexpected reply {reply!r}")

    def assertApiError(self, reply, code):
        """An API error: the status, JSON {"error": non-empty string, "errors": list}."""
        self.assertEqual(reply.status, code, f"reply {reply!r}")
        self.assertIn("application/json", reply.header("Content-Type") or "")
        body = reply.json()
        self.assertIsInstance(body.get("error"), str, body)
        self.assertTrue(body["error"], body)
        self.assertIsInstance(body.get("errors"), list, body)
        return body

    def assertSubsequence(self, items, expected):
        """`expected` appears in `items` in order (not necessarily adjacent)."""
        it = iter(items)
        for e in expected:
            for x in it:
                if x == e:
                    break
            else:
                self.fail(f"{e!r} not found in order in {items!r} (expected subsequence "
                          f"{expected!r})")


def ctl(admin_url, *args, token_file=None, timeout=30):
    """Runs canaryctl; returns CompletedProcess with text stdout/stderr."""
    argv = [binary("canaryctl"), "--server", admin_url]
    if token_file:
        argv += ["--token-file", token_file]
    argv += list(args)
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)
