"""Helpers shared by the packaging checks (tests/packaging/tests.cmake runs them).

Environment: CANARY_SOURCE_DIR (repository root), CANARY_BIN_DIR (built binaries),
CANARY_BUILD_DIR (the CMake build directory). Every check is offline: no Docker engine, no
network, no systemd as PID 1.
"""

import contextlib
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

SOURCE = pathlib.Path(os.environ.get("CANARY_SOURCE_DIR",
                                     pathlib.Path(__file__).resolve().parents[2]))
BIN = pathlib.Path(os.environ.get("CANARY_BIN_DIR", SOURCE / "build" / "bin"))
BUILD = pathlib.Path(os.environ.get("CANARY_BUILD_DIR", BIN.parent))
BINARIES = ("canary-proxy", "canaryctl", "demo-backend")

_failures = []


def check(ok, message):
    """Records a failed expectation (all are reported at the end, like the config loader)."""
    if ok:
        print("ok    " + message)
    else:
        print("FAIL  " + message)
        _failures.append(message)
    return ok


def finish():
    if _failures:
        print("\n%d check(s) failed:" % len(_failures))
        for f in _failures:
            print("  - " + f)
        sys.exit(1)
    print("\nall checks passed")
    sys.exit(0)


def run(cmd, timeout=60, check_rc=False, **kw):
    """Runs cmd, returns CompletedProcess with text stdout/stderr."""
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check_rc and p.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s%s" % (" ".join(map(str, cmd)), p.returncode,
                                                       p.stdout, p.stderr))
    return p


@contextlib.contextmanager
def scratch_dir(prefix):
    d = tempfile.mkdtemp(prefix="canary-%s-" % prefix)
    try:
        yield pathlib.Path(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=2):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def wait_http(url, deadline_s=10):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            return http_get(url)
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("no answer from %s within %ss" % (url, deadline_s))


class processes:
    """Started processes, terminated (SIGTERM, then SIGKILL) on exit. Their standard error goes
    to a temporary file (a pipe nobody reads could block them), shown when a check failed."""

    def __init__(self):
        self.procs = []

    def start(self, cmd, **kw):
        log = tempfile.TemporaryFile()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, **kw)
        self.procs.append((p, log, " ".join(str(c) for c in cmd)))
        return p

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for p, _, _ in self.procs:
            if p.poll() is None:
                p.terminate()
        for p, log, cmd in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if _failures or exc[0] is not None:
                log.seek(0)
                print("---- stderr of %s (exit %s):\n%s" % (
                    cmd, p.returncode, log.read()[-2000:].decode(errors="replace")))
            log.close()


def makefile_packages():
    out = run(["make", "-s", "--no-print-directory", "-C", str(SOURCE), "print-packages"],
              check_rc=True).stdout
    return out.split()


def _owner(path):
    """The Debian package owning a file, trying the /usr-merged spellings of its path."""
    candidates = [path, os.path.realpath(path)]
    for c in list(candidates):
        if c.startswith("/usr/"):
            candidates.append(c[len("/usr"):])
        else:
            candidates.append("/usr" + c)
    for c in candidates:
        p = run(["dpkg-query", "-S", c])
        if p.returncode == 0:
            # "libc6:amd64: /lib/x86_64-linux-gnu/libc.so.6"
            return p.stdout.split(":")[0].split(",")[0].strip()
    return None


def runtime_packages(binaries):
    """Debian packages of the shared libraries `ldd` resolves for the binaries: {pkg: [libs]}."""
    libs = set()
    for b in binaries:
        out = run(["ldd", str(b)], check_rc=True).stdout
        for line in out.splitlines():
            line = line.strip()
            if "not found" in line:
                raise RuntimeError("%s: unresolved library: %s" % (b, line))
            m = re.match(r"\S+ => (/\S+) \(", line) or re.match(r"(/\S+) \(", line)
            if m:
                libs.add(m.group(1))
    owners = {}
    for lib in sorted(libs):
        pkg = _owner(lib)
        if pkg is None:
            raise RuntimeError("no Debian package owns %s (dpkg -S)" % lib)
        owners.setdefault(pkg, []).append(lib)
    return owners


def service_hosts_file(dest, names):
    dest.write_text("127.0.0.1 localhost\n::1 localhost\n" +
                    "".join("127.0.0.1 %s\n" % n for n in names))
    return dest


def with_hosts(cmd, hosts_file):
    """cmd run with `hosts_file` bind-mounted over /etc/hosts in a private mount namespace, so
    names only a container network knows (compose service names) resolve, without touching the
    machine's /etc/hosts. Returns None when mount namespaces are unavailable (not root)."""
    if shutil.which("unshare") is None:
        return None
    probe = run(["unshare", "--mount", "true"])
    if probe.returncode != 0:
        return None
    return ["unshare", "--mount", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"',
            str(hosts_file)] + [str(c) for c in cmd]


def host_port(text):
    """("host", port) of "host:port" or "[v6]:port"."""
    host, _, port = str(text).rpartition(":")
    return host.strip("[]"), int(port or 0)


def duration_s(text):
    """Seconds in a config duration: 30s, 1m30s, 1.5h, 250ms or an integer number of seconds."""
    text = str(text).strip()
    if text.isdigit():
        return float(text)
    total = 0.0
    for number, unit in re.findall(r"([\d.]+)(ms|h|m|s)", text):
        total += float(number) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
    return total


def require(*tools):
    """Fails at once, naming the Debian package, when a tool the check runs is missing."""
    packages = {"docker-compose": "docker-compose", "promtool": "prometheus",
                "systemd-analyze": "systemd", "dpkg-deb": "dpkg", "dpkg-shlibdeps": "dpkg-dev",
                "cpack": "cmake", "readelf": "binutils", "ldd": "libc-bin", "make": "make"}
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        print("FAIL  missing tools: %s (Debian packages: %s; `make deps` installs them)" % (
            " ".join(missing), " ".join(sorted({packages.get(t, t) for t in missing}))))
        sys.exit(1)
