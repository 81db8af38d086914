"""Helpers of the hardening suite (Python 3 stdlib only), on top of tests/e2e/harness.py.

- FakeUpstream: a scriptable HTTP/1.1 upstream on 127.0.0.1:<port 0>. It records every request
  head it read (complete or not), every connection, and hands each parsed request to a handler
  that writes whatever bytes the test wants: a normal reply, garbage, a reply cut mid-body, a
  reset, or nothing at all (hang, until the test ends). An optional `head_handler` sees the
  request as soon as its head arrived, before its body is read (an early response).
- RawClient / exchange(): a raw socket client that parses one response and tells whether the
  proxy then closed the connection.
- rss_kib(): the resident set size of a process, for the bounded-memory tests.

Everything a test starts is stopped by addCleanup; the hang handlers wait on an event the
cleanup sets, so no thread outlives its test for long.
"""

import os
import select
import socket
import sys
import threading
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

from harness import (DEADLINE, E2ETestCase, HeaderList, closed_port, make_config, poll,  # noqa: E402,F401
                     route)

IO_TIMEOUT = 10.0
# Set by scripts/sanitize.sh ("asan", "tsan"): sanitized binaries are slower and ASan keeps a
# quarantine of freed memory, so RSS bounds are not checked and deadlines get more slack.
SANITIZER = os.environ.get("CANARY_SANITIZER", "")
# Slack for a deadline: the worker's sweep runs every 100 ms, and CI machines are busy.
SLACK = 3.0 if SANITIZER else 1.5


# ---------------------------------------------------------------- the fake upstream

class Request(HeaderList):
    """One request as the fake upstream read it."""

    def __init__(self, conn_id, seq, raw_head):
        self.conn_id = conn_id
        self.seq = seq            # 0 for the first request on its connection
        self.raw_head = raw_head  # bytes, through the blank line
        lines = raw_head.decode("latin-1").split("\r\n")
        self.method, self.target, self.version = (lines[0].split(" ", 2) + ["", ""])[:3]
        self.headers = []
        for line in lines[1:]:
            if not line:
                continue
            k, _, v = line.partition(":")
            self.headers.append((k, v.strip()))
        self.body = b""           # kept up to 1 MiB
        self.body_len = 0
        self.body_crc = 0
        self.complete = False     # the whole body (per its framing) arrived

    def __repr__(self):
        return f"<Request {self.method} {self.target} complete={self.complete} {self.raw_head[:200]!r}>"


class UpstreamConn:
    """What a handler gets: the socket and its bookkeeping."""

    def __init__(self, fake, sock, conn_id):
        self.fake = fake
        self.sock = sock
        self.id = conn_id
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def reset(self):
        """Close with RST (SO_LINGER 0)."""
        import struct
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.sock.close()

    def hang(self, timeout=60.0):
        """Neither answer nor close until the test ends, `timeout` passes or the peer closes
        (returns True then: the proxy gave the connection up)."""
        deadline = time.monotonic() + timeout
        while not self.fake.released.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            readable, _, _ = select.select([self.sock], [], [], min(left, 0.05))
            if readable:
                try:
                    data = self.sock.recv(65536)
                except OSError:
                    return True
                if not data:
                    return True
                self.buf += data
        return False

    def reply(self, status=200, body=b"", headers=None, reason=None, chunked=False):
        if isinstance(body, str):
            body = body.encode()
        reason = reason or {200: "OK", 204: "No Content", 304: "Not Modified",
                            404: "Not Found", 500: "Internal Server Error"}.get(status, "X")
        head = f"HTTP/1.1 {status} {reason}\r\n"
        for k, v in (headers or {}).items():
            head += f"{k}: {v}\r\n"
        if chunked:
            head += "Transfer-Encoding: chunked\r\n\r\n"
            data = head.encode()
            if body:
                data += f"{len(body):x}\r\n".encode() + body + b"\r\n"
            data += b"0\r\n\r\n"
        else:
            if status not in (204, 304) and "Content-Length" not in (headers or {}):
                head += f"Content-Length: {len(body)}\r\n"
            data = head.encode() + b"\r\n" + body
        self.sock.sendall(data)


def default_handler(conn, req):
    """200 with "<method> <target> <body length>" as the body; keep-alive."""
    conn.reply(200, f"{req.method} {req.target} {req.body_len}",
               {"Content-Type": "text/plain"})
    return True


class FakeUpstream:
    """A threaded HTTP/1.1 server whose answers a test scripts with `handler(conn, req)`;
    the handler returns True to keep the connection for another request."""

    def __init__(self, handler=None, backlog=128, head_handler=None):
        self.handler = handler or default_handler
        # Called with (conn, req) right after a head, before its body; returning False ends the
        # connection there (closing over an unread body makes the kernel send RST).
        self.head_handler = head_handler
        self.lock = threading.Condition()
        self.heads = []        # every Request whose head arrived, complete or not
        self.connections = 0   # accepted
        self.closed = 0        # closed (by either side)
        self.close_times = []  # monotonic time of each close, in order
        self.released = threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.endpoint = f"127.0.0.1:{self.port}"
        self.conns = []
        self.thread = threading.Thread(target=self._accept_loop, daemon=True,
                                       name=f"fake-upstream-{self.port}")
        self.thread.start()

    # --- bookkeeping, thread-safe
    @property
    def requests(self):
        """Requests whose body arrived whole."""
        with self.lock:
            return [r for r in self.heads if r.complete]

    def head_count(self):
        with self.lock:
            return len(self.heads)

    def wait_heads(self, n, timeout=DEADLINE):
        return poll(lambda: self.head_count() >= n, timeout, what=f"{n} request heads upstream")

    def wait_closed(self, n, timeout=DEADLINE):
        return poll(lambda: self.closed >= n, timeout, what=f"{n} upstream connections closed")

    def stop(self):
        """Stops listening (new connects are refused at once) and closes every connection."""
        self.released.set()
        try:
            # close() alone does not wake a thread blocked in accept(): the socket would stay
            # listening until the next connection arrives.
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                c.close()
            except OSError:
                pass

    # --- server
    def _accept_loop(self):
        conn_id = 0
        while True:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            conn_id += 1
            with self.lock:
                self.connections += 1
                self.conns.append(s)
                self.lock.notify_all()
            threading.Thread(target=self._serve, args=(s, conn_id), daemon=True).start()

    def _recv(self, conn):
        b = conn.sock.recv(1 << 20)
        if not b:
            raise EOFError
        return b

    def _read_head(self, conn):
        while b"\r\n\r\n" not in conn.buf:
            if len(conn.buf) > (1 << 20):
                raise EOFError
            conn.buf += self._recv(conn)
        head, _, conn.buf = conn.buf.partition(b"\r\n\r\n")
        return head + b"\r\n\r\n"

    def _read_exact(self, conn, n, req):
        while n > 0:
            if not conn.buf:
                conn.buf = self._recv(conn)
            take = conn.buf[:n]
            conn.buf = conn.buf[len(take):]
            self._body(req, take)
            n -= len(take)

    def _read_line(self, conn):
        while b"\r\n" not in conn.buf:
            if len(conn.buf) > 65536:
                raise EOFError
            conn.buf += self._recv(conn)
        line, _, conn.buf = conn.buf.partition(b"\r\n")
        return line

    @staticmethod
    def _body(req, data):
        req.body_len += len(data)
        req.body_crc = zlib.crc32(data, req.body_crc)
        if len(req.body) < (1 << 20):
            req.body += data[: (1 << 20) - len(req.body)]

    def _serve(self, sock, conn_id):
        conn = UpstreamConn(self, sock, conn_id)
        seq = 0
        try:
            while True:
                if not conn.buf:
                    conn.buf = self._recv(conn)
                req = Request(conn_id, seq, self._read_head(conn))
                with self.lock:
                    self.heads.append(req)
                    self.lock.notify_all()
                if self.head_handler is not None and self.head_handler(conn, req) is False:
                    break
                te = (req.header("Transfer-Encoding") or "").lower()
                if te == "chunked":
                    while True:
                        size = int(self._read_line(conn).split(b";")[0], 16)
                        if size == 0:
                            while self._read_line(conn):
                                pass
                            break
                        self._read_exact(conn, size, req)
                        if self._read_line(conn) != b"":
                            raise EOFError
                elif req.header("Content-Length") is not None:
                    self._read_exact(conn, int(req.header("Content-Length")), req)
                req.complete = True
                seq += 1
                if not self.handler(conn, req):
                    break
        except (EOFError, OSError, ValueError):
            pass
        finally:
            try:
                sock.close()
            except OSError:
                pass
            with self.lock:
                self.closed += 1
                self.close_times.append(time.monotonic())
                self.lock.notify_all()


def closed_port_endpoint():
    """"host:port" where nothing listens: connects are refused at once."""
    return f"127.0.0.1:{closed_port()}"


def blackhole_endpoint(test):
    """A 127.0.0.1 port whose SYNs go unanswered: a listener with a full accept queue (Linux
    drops further SYNs), so a connect to it hangs until the connector's own timeout."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    port = lsock.getsockname()[1]
    fillers = []
    # Fill the accept queue (its length is backlog + 1); a connect that does not complete at
    # once means the queue is full.
    for _ in range(8):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.setblocking(False)
        try:
            c.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(c)
        time.sleep(0.05)
    for c in fillers:
        test.addCleanup(c.close)
    test.addCleanup(lsock.close)
    return f"127.0.0.1:{port}"


# ---------------------------------------------------------------- the raw client

class Response(HeaderList):
    def __init__(self, status, headers, body, raw_head):
        self.status = status
        self.headers = headers
        self.body = body
        self.raw_head = raw_head

    def __repr__(self):
        return f"<Response {self.status} {self.raw_head[:300]!r} {self.body[:200]!r}>"


class RawClient:
    """One connection; `send` raw bytes, `response()` parses one response (Content-Length,
    chunked, or to EOF), `closed()` tells whether the server closed after it."""

    def __init__(self, port, timeout=IO_TIMEOUT):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        try:
            self.sock.sendall(data)
            return True
        except OSError:  # the proxy may have answered and closed already
            return False

    def _more(self, timeout=None):
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            b = self.sock.recv(1 << 20)
        except ConnectionResetError:
            b = b""
        if not b:
            self.eof = True
            raise EOFError
        self.buf += b
        return b

    def head(self, timeout=IO_TIMEOUT):
        """(status, headers, raw head) of the next response head."""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no response head")
            self._more(left)
        raw, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = []
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers.append((k.strip(), v.strip()))
        return status, headers, raw

    def response(self, timeout=IO_TIMEOUT, head_request=False, sink=None):
        """The next response. `sink(bytes)` instead of keeping the body (large downloads)."""
        deadline = time.monotonic() + timeout
        while True:
            status, headers, raw = self.head(timeout)
            if not (100 <= status < 200 and status != 101):
                break
        r = Response(status, headers, b"", raw)
        keep = sink is None

        def take(n):
            out = self.buf[:n]
            self.buf = self.buf[n:]
            if keep:
                r.body += out
            else:
                sink(out)
            return len(out)

        def need(n):
            while len(self.buf) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise socket.timeout("response body")
                self._more(left)

        if head_request or status in (204, 304):
            return r
        te = (r.header("Transfer-Encoding") or "").lower()
        if te == "chunked":
            while True:
                while b"\r\n" not in self.buf:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise socket.timeout("chunk size")
                    self._more(left)
                line, _, self.buf = self.buf.partition(b"\r\n")
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    need(2)
                    while not self.buf.startswith(b"\r\n"):
                        need(len(self.buf) + 1)
                        if b"\r\n" in self.buf and not self.buf.startswith(b"\r\n"):
                            self.buf = self.buf.partition(b"\r\n")[2]  # a trailer field
                    self.buf = self.buf[2:]
                    return r
                while size > 0:
                    if not self.buf:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            raise socket.timeout("chunk data")
                        self._more(left)
                    size -= take(size)
                need(2)
                self.buf = self.buf[2:]
        elif r.header("Content-Length") is not None:
            n = int(r.header("Content-Length"))
            while n > 0:
                if not self.buf:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise socket.timeout("body")
                    self._more(left)
                n -= take(n)
            return r
        else:
            try:
                while True:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise socket.timeout("body to EOF")
                    if self.buf:
                        take(len(self.buf))
                    self._more(left)
            except EOFError:
                if self.buf:
                    take(len(self.buf))
            return r

    def closed(self, timeout=3.0):
        """True if the server closes (FIN or RST) within `timeout` with no further bytes; False
        on timeout; AssertionError if it sends more bytes (a second response)."""
        if self.eof:
            return True
        if self.buf:
            raise AssertionError(f"unexpected extra bytes from the proxy: {self.buf[:300]!r}")
        try:
            self._more(timeout)
        except EOFError:
            return True
        except socket.timeout:
            return False
        raise AssertionError(f"unexpected extra bytes from the proxy: {self.buf[:300]!r}")

    def drain_to_eof(self, timeout=IO_TIMEOUT, keep=False):
        """Reads until the server closes; True if it did within `timeout`. The bytes are dropped
        as they come, or kept in `buf` with keep=True."""
        deadline = time.monotonic() + timeout
        if not keep:
            self.buf = b""
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                self._more(left)
            except EOFError:
                return True
            except socket.timeout:
                return False
            if not keep:
                self.buf = b""
        return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def send_and_read_all(port, data, timeout=5.0):
    """Sends raw bytes, shuts our sending side, reads until the server closes or `timeout`:
    (all bytes received, whether the server closed)."""
    c = RawClient(port, timeout)
    try:
        c.send(data)
        try:
            c.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        closed = c.drain_to_eof(timeout, keep=True)
        return c.buf, closed
    finally:
        c.close()


def exchange(port, data, timeout=IO_TIMEOUT, close_timeout=3.0, half_close=False):
    """Sends raw bytes on a fresh connection: (Response or None, closed after it).
    `half_close` shuts our sending side after the bytes (an incomplete head then ends at once
    instead of at the header deadline)."""
    c = RawClient(port, timeout)
    try:
        c.send(data)
        if half_close:
            try:
                c.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        try:
            r = c.response(timeout)
        except EOFError:
            return None, True
        return r, c.closed(close_timeout)
    finally:
        c.close()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


class RssSampler(threading.Thread):
    """Samples a process's RSS every 50 ms until stopped; `peak` in KiB."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.stop_event = threading.Event()
        self.start()

    def run(self):
        while not self.stop_event.is_set():
            try:
                self.peak = max(self.peak, rss_kib(self.pid))
            except (OSError, AssertionError):
                return
            self.stop_event.wait(0.05)

    def stop(self):
        self.stop_event.set()
        self.join(2)
        return self.peak


# ---------------------------------------------------------------- the test base class

class HardeningTestCase(E2ETestCase):

    def fake_upstream(self, handler=None, backlog=128, head_handler=None):
        f = FakeUpstream(handler, backlog, head_handler)
        self.addCleanup(f.stop)
        return f

    def proxy_for(self, upstreams, limits=None, timeouts=None, workers=1, routes=None):
        """A proxy with one route `hard` to upstream `blue` (or `routes`); `upstreams` maps a name
        to an endpoint or a list of endpoints."""
        extra = {"limits": limits} if limits else None
        cfg = make_config(upstreams, routes or [route(name="hard", upstream="blue", steps=[])],
                          workers=workers, timeouts=timeouts, extra=extra)
        return self.start_proxy(cfg)

    def raw_client(self, *args, **kw):
        """A RawClient closed when the test ends."""
        c = RawClient(*args, **kw)
        self.addCleanup(c.close)
        return c

    def assertAlive(self, proxy):
        self.assertTrue(proxy.process.alive(), f"the proxy died\n{proxy.logs()}")
