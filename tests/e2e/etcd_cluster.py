"""A real etcd cluster on 127.0.0.1 for the fleet tests and the fleet bench (stdlib only).

Debian's etcd-server (`etcd`) and etcd-client (`etcdctl`), v3 API. Each member gets free
loopback ports (picked by binding port 0, so racy in theory like harness.closed_port) and a data
directory under the given work directory; members die with the Python process that started them
(PR_SET_PDEATHSIG), even when a test run is killed. A stopped member restarts from its data
directory on the same ports, so the cluster keeps its identity and data.
"""

import ctypes
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request

from harness import DEADLINE, closed_port, poll

PR_SET_PDEATHSIG = 1


def etcd_binary():
    for path in ("/usr/bin/etcd", shutil.which("etcd")):
        if path and os.access(path, os.X_OK):
            return path
    raise AssertionError("etcd not found: install Debian's etcd-server")


def etcdctl_binary():
    for path in ("/usr/bin/etcdctl", shutil.which("etcdctl")):
        if path and os.access(path, os.X_OK):
            return path
    raise AssertionError("etcdctl not found: install Debian's etcd-client")


def _die_with_parent():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Member:
    def __init__(self, name, workdir, token):
        self.name = name
        self.client_port = closed_port()
        self.peer_port = closed_port()
        self.data_dir = os.path.join(workdir, f"etcd-{name}")
        self.log_path = os.path.join(workdir, f"etcd-{name}.log")
        self.token = token
        self.proc = None

    @property
    def client_url(self):
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self):
        return f"http://127.0.0.1:{self.peer_port}"

    def start(self, initial_cluster):
        if self.alive():
            return
        argv = [etcd_binary(), f"--name={self.name}", f"--data-dir={self.data_dir}",
                f"--listen-client-urls={self.client_url}",
                f"--advertise-client-urls={self.client_url}",
                f"--listen-peer-urls={self.peer_url}",
                f"--initial-advertise-peer-urls={self.peer_url}",
                f"--initial-cluster={initial_cluster}",
                f"--initial-cluster-token={self.token}",
                "--initial-cluster-state=new",
                # Loopback only: short heartbeats so a lost member or leader is noticed in
                # well under a second (defaults: 100 ms / 1000 ms).
                "--heartbeat-interval=50", "--election-timeout=500",
                "--logger=zap", f"--log-outputs={self.log_path}"]
        with open(os.devnull, "rb") as null_in, open(os.devnull, "wb") as null_out:
            # No pipes: a member must never hold ctest's output open after the test ends.
            self.proc = subprocess.Popen(argv, stdin=null_in, stdout=null_out,
                                         stderr=null_out, preexec_fn=_die_with_parent)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
        if self.proc is not None:
            try:
                self.proc.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                pass

    def healthy(self):
        """GET /health on the client URL: {"health": "true"} once the member has a leader."""
        with urllib.request.urlopen(self.client_url + "/health", timeout=2) as r:
            return json.loads(r.read()).get("health") == "true"


class EtcdCluster:
    """`size` etcd members on 127.0.0.1 forming one cluster; stop() kills them all."""

    def __init__(self, workdir, size=3):
        os.makedirs(workdir, exist_ok=True)
        self.workdir = workdir
        self.size = size
        self._new_members()

    def _new_members(self):
        token = f"canary-e2e-{os.getpid()}-{time.monotonic_ns()}"
        self.members = [Member(f"m{i}", self.workdir, token) for i in range(self.size)]
        self.initial_cluster = ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    @property
    def endpoints(self):
        return [m.client_url for m in self.members]

    def start(self, timeout=20.0, attempts=3):
        """Starts every member and waits until each is healthy. A member that exits at once
        most likely lost one of its ports (picked free, then bound by someone else before etcd
        bound it): then the whole cluster starts again on new ports, at most `attempts` times."""
        for attempt in range(attempts):
            for m in self.members:
                m.start(self.initial_cluster)
            try:
                self.wait_healthy(timeout=timeout)
                return self
            except AssertionError:
                if attempt + 1 == attempts or all(m.alive() for m in self.members):
                    raise
            self.stop()
            for m in self.members:
                shutil.rmtree(m.data_dir, ignore_errors=True)
            self._new_members()
        return self

    def wait_healthy(self, members=None, timeout=20.0):
        members = self.members if members is None else members
        for m in members:
            def check(m=m):
                if not m.alive():
                    raise AssertionError(f"etcd member {m.name} exited; log: {self.log(m)}")
                return m.healthy()
            poll(check, timeout=timeout, interval=0.05, what=f"etcd member {m.name} healthy")

    def stop_member(self, i):
        self.members[i].kill()

    def start_member(self, i):
        self.members[i].start(self.initial_cluster)

    def stop(self):
        for m in self.members:
            m.kill()

    def log(self, m):
        try:
            with open(m.log_path) as f:
                return f.read()[-3000:]
        except OSError:
            return "(no log)"

    def etcdctl(self, *args, endpoints=None, timeout=DEADLINE):
        env = dict(os.environ, ETCDCTL_API="3")
        argv = [etcdctl_binary(), "--endpoints=" + ",".join(endpoints or self.endpoints),
                "--dial-timeout=2s", "--command-timeout=5s", *args]
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           env=env, timeout=timeout)
        if r.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} -> {r.returncode}: {r.stderr}")
        return r.stdout

    def get_prefix(self, prefix):
        """{key: (value, mod_revision)} of every key under prefix, read with etcdctl."""
        out = json.loads(self.etcdctl("get", "--prefix", prefix, "-w", "json"))
        import base64
        kvs = {}
        for kv in out.get("kvs", []) or []:
            key = base64.b64decode(kv["key"]).decode()
            value = base64.b64decode(kv.get("value", "")).decode()
            kvs[key] = (value, int(kv.get("mod_revision", 0)))
        return kvs
