"""packaging.dockerfile: the Dockerfile's package lists and health check, checked without Docker.

- the build stage is debian:bookworm and installs the Makefile's build packages: every -dev
  package of PACKAGES, and nothing the Makefile does not install itself;
- the runtime stage is debian:bookworm-slim and installs exactly the Debian packages owning the
  shared libraries the built binaries load (`ldd`, mapped with `dpkg -S`);
- it runs as a non-root user, copies every binary, and its sources exist (and are not excluded
  by .dockerignore);
- its HEALTHCHECK command, run here as is, passes against a live canary-proxy and demo-backend
  and fails against a closed port.
"""

import fnmatch
import json
import os
import re
import shlex
import struct

from common import (BIN, BINARIES, BUILD, SOURCE, check, finish, free_port, makefile_packages,
                    processes, require, run, runtime_packages, scratch_dir, wait_http)

# What CMake needs besides libraries: compiler, generator, pkg-config (RE2), Python (the test
# suites' configure step).
BUILD_TOOLS = {"g++", "cmake", "ninja-build", "pkg-config", "python3"}
# -dev packages of the Makefile that building the image does not need, and why.
NOT_FOR_THE_IMAGE = {
    "dpkg-dev": "dpkg-shlibdeps for `make package`, not the image build",
    "libclang-rt-14-dev": "clang's sanitizer runtimes, for the TSan and fuzzing test builds",
}


def instructions(text):
    """[(INSTRUCTION, arguments)] with continuation lines joined and comments dropped."""
    out, current = [], ""
    for line in text.splitlines():
        if not current and line.lstrip().startswith("#"):
            continue
        if current and line.lstrip().startswith("#"):
            continue  # a comment inside a continued instruction
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        if current.strip():
            word, _, rest = current.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
        current = ""
    return out


def stages(instrs):
    result = []
    for word, rest in instrs:
        if word == "FROM":
            result.append({"from": rest, "instrs": []})
        elif result:
            result[-1]["instrs"].append((word, rest))
    return result


def apt_packages(stage):
    pkgs = []
    for word, rest in stage["instrs"]:
        if word != "RUN":
            continue
        for command in re.split(r"&&|;|\|\|", rest):
            tokens = shlex.split(command)
            tokens = [t for t in tokens if "=" not in t or t.startswith("-")]  # VAR=value prefixes
            if len(tokens) >= 2 and tokens[0] in ("apt-get", "apt") and "install" in tokens:
                after = tokens[tokens.index("install") + 1:]
                pkgs += [t for t in after if not t.startswith("-")]
    return pkgs


def dockerignored(path, patterns):
    ignored = False
    for pat in patterns:
        negate = pat.startswith("!")
        pat = pat.lstrip("!").rstrip("/")
        parts = path.split("/")
        hit = any(fnmatch.fnmatch("/".join(parts[:i]), pat) or
                  fnmatch.fnmatch("/".join(parts[:i]), pat.replace("**/", ""))
                  for i in range(1, len(parts) + 1))
        if hit:
            ignored = not negate
    return ignored


def healthcheck_argv(runtime):
    for word, rest in runtime["instrs"]:
        if word == "HEALTHCHECK":
            m = re.search(r"\bCMD\s+(\[.*\])\s*$", rest)
            return json.loads(m.group(1)) if m else None
    return None


def run_healthcheck(argv, env_port):
    env = dict(os.environ, CANARY_HEALTH_PORT=str(env_port))
    return run(argv, timeout=10, env=env).returncode


def installed_depends():
    """{package: set of packages it depends on} for every installed package."""
    out = run(["dpkg-query", "-W", "-f", "${Package}\t${Pre-Depends}, ${Depends}\n"],
              check_rc=True).stdout
    deps = {}
    for line in out.splitlines():
        pkg, _, rest = line.partition("\t")
        names = re.findall(r"(?:^|[,|]\s*)([a-z0-9][a-z0-9+.-]+)", rest)
        deps[pkg] = set(n.split(":")[0] for n in names)
    return deps


def closure(roots, deps):
    seen, todo = set(), list(roots)
    while todo:
        p = todo.pop()
        if p not in seen:
            seen.add(p)
            todo += deps.get(p, ())
    return seen


def ninja_deps(path):
    """{output: [inputs]} from Ninja's dependency log (format v3/v4), read without running
    ninja, which may rewrite the log while another test builds in the same directory."""
    data = path.read_bytes()
    magic = b"# ninjadeps\n"
    if not data.startswith(magic):
        raise RuntimeError("%s: not a ninja deps log" % path)
    version = struct.unpack_from("<i", data, len(magic))[0]
    pos, paths, deps = len(magic) + 4, [], {}
    while pos + 4 <= len(data):
        head = struct.unpack_from("<I", data, pos)[0]
        pos += 4
        size = head & 0x7FFFFFFF
        rec = data[pos:pos + size]
        pos += size
        if len(rec) < size:
            break  # a truncated last record (interrupted build): ignore it, like ninja
        if head >> 31:
            ints = struct.unpack("<%di" % (size // 4), rec)
            skip = 3 if version >= 4 else 2  # out id, then a 64-bit (v4) or 32-bit mtime
            out = ints[0]
            deps[out] = ints[skip:]
        else:
            paths.append(rec[:-4].rstrip(b"\0").decode())
    return {paths[o]: [paths[i] for i in ins if 0 <= i < len(paths)]
            for o, ins in deps.items() if 0 <= o < len(paths)}


def check_build_inputs(build_pkgs):
    """What building the three binaries read from the system: the headers (ninja's dependency
    log) and the libraries on their link lines. Each must come with the build stage's packages."""
    if not (BUILD / ".ninja_deps").exists():
        print("note  %s is not a Ninja build: the headers check is skipped" % BUILD)
        return
    wanted = ("CMakeFiles/canary.dir/",) + tuple("CMakeFiles/%s.dir/" % b for b in BINARIES)
    files = set()
    for out, inputs in ninja_deps(BUILD / ".ninja_deps").items():
        if out.startswith(wanted):
            files |= {f for f in inputs if f.startswith("/usr/")}
    ninja = (BUILD / "build.ninja").read_text()
    for b in BINARIES:
        m = re.search(r"^build bin/%s: CXX_EXECUTABLE_LINKER\S*.*\n((?:  .*\n)+)" % re.escape(b),
                      ninja, re.M)
        link = re.search(r"LINK_LIBRARIES = (.*)", m.group(1)).group(1) if m else ""
        check(m is not None, "link line of %s in build.ninja" % b)
        files |= {t for t in link.split() if t.startswith("/")}
    check(len(files) > 100, "found %d system files the build reads" % len(files))
    owners = {}
    batch = sorted(files)
    for i in range(0, len(batch), 500):
        out = run(["dpkg-query", "-S"] + batch[i:i + 500]).stdout
        for line in out.splitlines():
            pkg, _, path = line.partition(": ")
            for p in pkg.split(","):
                owners.setdefault(p.strip().split(":")[0], set()).add(path)
    unowned = [f for f in files if not any(f in paths for paths in owners.values())]
    # dpkg knows /usr-merged paths under either spelling; retry the others one by one.
    for f in list(unowned):
        alt = f[len("/usr"):] if f.startswith("/usr/") else "/usr" + f
        p = run(["dpkg-query", "-S", alt])
        if p.returncode == 0:
            owners.setdefault(p.stdout.split(":")[0], set()).add(f)
            unowned.remove(f)
    check(not unowned, "every system file the build reads belongs to a package; not: %s"
          % unowned[:5])
    have = closure(build_pkgs, installed_depends())
    for pkg in sorted(owners):
        how = "listed" if pkg in build_pkgs else ("dependency" if pkg in have else "MISSING")
        print("      build reads %-28s %3d files (%s)" % (pkg, len(owners[pkg]), how))
    check(set(owners) <= have, "the build stage's packages (with their dependencies) provide "
          "every header and library the build reads; missing: %s" % sorted(set(owners) - have))


def main():
    require("make", "ldd", "dpkg-query", "bash")
    text = (SOURCE / "Dockerfile").read_text()
    st = stages(instructions(text))
    check(len(st) >= 2, "multi-stage Dockerfile (%d stages)" % len(st))
    if len(st) < 2:
        finish()
    build, runtime = st[0], st[-1]
    check(re.fullmatch(r"debian:bookworm\s+AS\s+\S+", build["from"], re.I) is not None,
          "build stage FROM debian:bookworm (%s)" % build["from"])
    check(runtime["from"].split()[0] == "debian:bookworm-slim",
          "runtime stage FROM debian:bookworm-slim (%s)" % runtime["from"])

    # Build stage against the Makefile's PACKAGES.
    make_pkgs = set(makefile_packages())
    build_pkgs = set(apt_packages(build))
    dev = {p for p in make_pkgs if p.endswith("-dev")}
    for p in sorted(dev - build_pkgs):
        print("      not in the image build: %s (%s)" % (p, NOT_FOR_THE_IMAGE.get(p, "?")))
    check(dev - build_pkgs <= set(NOT_FOR_THE_IMAGE),
          "build stage installs every -dev package of the Makefile the build needs; missing: %s"
          % sorted(dev - build_pkgs - set(NOT_FOR_THE_IMAGE)))
    check_build_inputs(build_pkgs)
    check(BUILD_TOOLS <= build_pkgs, "build stage installs the build tools; missing: %s"
          % sorted(BUILD_TOOLS - build_pkgs))
    check(build_pkgs <= make_pkgs, "build stage installs only packages the Makefile installs; "
          "extra: %s" % sorted(build_pkgs - make_pkgs))

    # Runtime stage against ldd + dpkg -S.
    owners = runtime_packages([BIN / b for b in BINARIES])
    for pkg, libs in sorted(owners.items()):
        print("      %s: %s" % (pkg, " ".join(os.path.basename(l) for l in libs)))
    runtime_pkgs = set(apt_packages(runtime))
    check(runtime_pkgs == set(owners),
          "runtime stage installs exactly the binaries' library packages; missing %s, extra %s"
          % (sorted(set(owners) - runtime_pkgs), sorted(runtime_pkgs - set(owners))))
    check(not any(p.endswith("-dev") for p in runtime_pkgs), "no -dev package at runtime")

    # Runtime stage: user, copies, health check.
    users = [rest for word, rest in runtime["instrs"] if word == "USER"]
    check(users and users[-1].split(":")[0] not in ("root", "0"),
          "runs as a non-root user (%s)" % users)
    copies = [rest for word, rest in runtime["instrs"] if word == "COPY"]
    for b in BINARIES:
        check(any("--from=" in c and "/" + b in c for c in copies),
              "runtime stage copies %s from the build stage" % b)
    ignore = [l.strip() for l in (SOURCE / ".dockerignore").read_text().splitlines()
              if l.strip() and not l.startswith("#")]
    for c in copies:
        if "--from=" in c:
            continue
        for src in shlex.split(c)[:-1]:
            check((SOURCE / src).exists() and not dockerignored(src, ignore),
                  "COPY source %s exists and is in the build context" % src)
    for path in ("build/bin/canary-proxy", "build-pkg/x", "config/compose-admin.token", ".git/x"):
        check(dockerignored(path, ignore), ".dockerignore keeps %s out of the context" % path)
    for path in ("proxy/config/load.cpp", "CMakeLists.txt", "tests/CMakeLists.txt",
                 "packaging/canary-proxy.yaml"):
        check(not dockerignored(path, ignore), ".dockerignore keeps %s in the context" % path)

    argv = healthcheck_argv(runtime)
    check(argv is not None and "/healthz" in " ".join(argv), "HEALTHCHECK CMD probes /healthz")
    envs = " ".join(rest for word, rest in runtime["instrs"] if word == "ENV")
    check("CANARY_HEALTH_PORT=9901" in envs, "health check port defaults to the admin port 9901")
    if argv is None:
        finish()
    with scratch_dir("dockerfile") as tmp, processes() as procs:
        backend_port, admin_port = free_port(), free_port()
        procs.start([BIN / "demo-backend", "--listen", "127.0.0.1:%d" % backend_port,
                     "--color", "blue"])
        config = tmp / "proxy.yaml"
        config.write_text(
            'listen: "127.0.0.1:0"\n'
            'admin: { listen: "127.0.0.1:%d" }\n'
            'state_file: state.json\n'
            'upstreams: { blue: { endpoints: ["127.0.0.1:%d"] } }\n'
            'routes: [ { name: demo, upstream: blue } ]\n' % (admin_port, backend_port))
        procs.start([BIN / "canary-proxy", "--config", config])
        wait_http("http://127.0.0.1:%d/healthz" % admin_port)
        wait_http("http://127.0.0.1:%d/healthz" % backend_port)
        check(run_healthcheck(argv, admin_port) == 0, "HEALTHCHECK passes against canary-proxy")
        check(run_healthcheck(argv, backend_port) == 0, "HEALTHCHECK passes against demo-backend")
        check(run_healthcheck(argv, free_port()) != 0, "HEALTHCHECK fails against a closed port")
    finish()


if __name__ == "__main__":
    main()
