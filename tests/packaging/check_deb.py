"""packaging.deb: the Debian package CPack builds (`make package`), checked offline.

- cpack builds the .deb into a scratch directory (from the build's CPackConfig.cmake);
- control fields (`dpkg-deb -I`): name, version, architecture, Maintainer, Description, Section
  net, and a computed Depends naming every package of the binaries' shared libraries;
- contents (`dpkg-deb -c`): the binaries in /usr/bin, the example config as a conffile in
  /etc/canary-proxy, the systemd unit, the docs; owned by root; nothing else;
- the unit: the required directives, its ExecStart/--config/StateDirectory agree with the
  packaged files and config, TimeoutStopSec above the drain timeout; `systemd-analyze verify`
  passes on the extracted root and does catch a broken copy; `systemd-analyze security` rates it;
- the extracted canary-proxy runs: --version, and --check on the extracted example config.
"""

import os
import re

import yaml

from common import (BINARIES, BUILD, check, duration_s, finish, require, run, runtime_packages,
                    scratch_dir)

UNIT = "lib/systemd/system/canary-proxy.service"
CONFIG = "etc/canary-proxy/config.yaml"
EXPECTED_FILES = {"usr/bin/" + b for b in BINARIES} | {
    CONFIG, UNIT,
    "usr/share/doc/canary-proxy/config-reference.md",
    "usr/share/doc/canary-proxy/docker.md",
}
# Exposure score of `systemd-analyze security` (0 = locked down, 10 = unprotected): the unit
# must stay "OK" (below 2.0). Loosening the hardening fails here.
MAX_EXPOSURE = 2.0


def provides(package):
    out = run(["dpkg-query", "-W", "-f", "${Provides}", package]).stdout
    return {p.strip().split(" ")[0] for p in out.split(",") if p.strip()}


def cpack_var(name):
    text = (BUILD / "CPackConfig.cmake").read_text()
    m = re.search(r'set\(%s "([^"]*)"\)' % name, text)
    return m.group(1) if m else None


def control_fields(info):
    """Fields of `dpkg-deb -I` (continuation lines joined)."""
    fields, last = {}, None
    for line in info.splitlines():
        m = re.match(r"^ ([A-Za-z-]+): (.*)$", line)
        if m:
            last = m.group(1)
            fields[last] = m.group(2)
        elif last and line.startswith("  "):
            fields[last] += "\n" + line.strip()
    return fields


def unit_directives(path):
    """{section: {key: [values]}} of a systemd unit (keys may repeat)."""
    out, section = {}, None
    for line in open(path):
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            out.setdefault(section, {})
            continue
        k, _, v = line.partition("=")
        out[section].setdefault(k.strip(), []).append(v.strip())
    return out


def verify_root(deb, dest):
    """The package extracted with what the unit refers to outside the package, from this
    machine: systemd's own units (sysinit.target, network-online.target, ...) and /bin/kill."""
    run(["dpkg-deb", "-x", deb, dest], check_rc=True)
    units = dest / "lib/systemd/system"
    for d in ("/lib/systemd/system", "/usr/lib/systemd/system"):
        if os.path.isdir(d):
            run(["cp", "-an", d + "/.", units], check_rc=True)
    (dest / "bin").mkdir(exist_ok=True)
    run(["cp", "-a", os.path.realpath("/bin/kill"), dest / "bin/kill"], check_rc=True)
    return dest


def verify(root, unit_path):
    p = run(["systemd-analyze", "verify", "--root=%s" % root, unit_path], timeout=60)
    return p.returncode, (p.stdout + p.stderr).strip()


def main():
    require("cpack", "dpkg-deb", "dpkg-shlibdeps", "systemd-analyze", "readelf", "ldd")
    check((BUILD / "CPackConfig.cmake").is_file(), "CPackConfig.cmake in the build directory")
    with scratch_dir("deb") as tmp:
        out = tmp / "out"
        p = run(["cpack", "-G", "DEB", "--config", BUILD / "CPackConfig.cmake", "-B", out],
                timeout=110)
        debs = sorted(out.glob("*.deb"))
        check(p.returncode == 0 and len(debs) == 1, "cpack builds one .deb" +
              ("" if p.returncode == 0 else ":\n" + p.stdout + p.stderr))
        if not debs:
            finish()
        deb = debs[0]
        arch = run(["dpkg", "--print-architecture"], check_rc=True).stdout.strip()
        version = cpack_var("CPACK_PACKAGE_VERSION")
        check(deb.name == "canary-proxy_%s_%s.deb" % (version, arch),
              "file name %s is canary-proxy_<version>_<arch>.deb" % deb.name)

        # Control fields.
        info = run(["dpkg-deb", "-I", deb], check_rc=True).stdout
        print(info)
        f = control_fields(info)
        check(f.get("Package") == "canary-proxy", "Package: canary-proxy")
        check(f.get("Version") == version, "Version: %s" % version)
        check(f.get("Architecture") == arch, "Architecture: %s" % arch)
        check(f.get("Section") == "net", "Section: net")
        check(re.fullmatch(r".+ <[^@\s]+@[^>\s]+>", f.get("Maintainer", "")) is not None,
              "Maintainer: Name <email> (%s)" % f.get("Maintainer"))
        desc = f.get("Description", "").split("\n")
        check(len(desc) >= 2 and desc[0] and all(len(l) < 80 for l in desc),
              "Description: a synopsis line and a long description, lines under 80 columns")
        depends = {d.strip().split(" ")[0] for d in f.get("Depends", "").split(",") if d.strip()}
        root = tmp / "root"
        run(["dpkg-deb", "-x", deb, root], check_rc=True)
        need = set(runtime_packages([root / "usr/bin" / b for b in BINARIES]))
        # A library package may be named by a virtual package it provides (libspdlog1.10 is
        # depended on as libspdlog1.10-fmt9).
        missing = {n for n in need if not ({n} | provides(n)) & depends}
        check(not missing, "Depends names the libraries' packages; missing %s" % sorted(missing))
        check(re.search(r"\blibc6 \(>= [^)]+\)", f.get("Depends", "")) is not None,
              "Depends carries minimum versions (computed by dpkg-shlibdeps)")

        # Control archive: conffiles and maintainer scripts.
        ctrl = tmp / "control"
        run(["dpkg-deb", "-e", deb, ctrl], check_rc=True)
        conffiles = ((ctrl / "conffiles").read_text().split()
                     if (ctrl / "conffiles").exists() else [])
        check(conffiles == ["/" + CONFIG], "conffiles: /%s (%s)" % (CONFIG, conffiles))
        for script in ("postinst", "prerm", "postrm"):
            s = ctrl / script
            check(s.exists() and os.access(s, os.X_OK), "%s is executable" % script)
            if s.exists():
                check(run(["sh", "-n", s]).returncode == 0, "%s is valid sh" % script)

        # Contents.
        listing = run(["dpkg-deb", "-c", deb], check_rc=True).stdout
        print(listing)
        files, owners = {}, set()
        for line in listing.splitlines():
            parts = line.split()
            mode, owner, path = parts[0], parts[1], parts[-1]
            owners.add(owner)
            if mode.startswith("-"):
                files[path.lstrip("./")] = mode
        check(set(files) == EXPECTED_FILES, "contents: exactly the expected files; missing %s, "
              "extra %s" % (sorted(EXPECTED_FILES - set(files)),
                            sorted(set(files) - EXPECTED_FILES)))
        check(owners == {"root/root"}, "every entry owned by root/root (%s)" % owners)
        for b in BINARIES:
            check(files.get("usr/bin/" + b) == "-rwxr-xr-x", "/usr/bin/%s mode 0755" % b)
            sections = run(["readelf", "-S", root / "usr/bin" / b]).stdout
            check(".symtab" not in sections, "/usr/bin/%s is stripped" % b)
        for path in (CONFIG, UNIT):
            check(files.get(path) == "-rw-r--r--", "/%s mode 0644" % path)

        # The extracted binaries run and accept the packaged config.
        bin_ = root / "usr/bin/canary-proxy"
        p = run([bin_, "--version"])
        check(p.returncode == 0 and version in p.stdout, "canary-proxy --version: %s"
              % p.stdout.strip())
        p = run([bin_, "--config", root / CONFIG, "--check"])
        check(p.returncode == 0, "extracted canary-proxy --check on the extracted /%s%s" %
              (CONFIG, "" if p.returncode == 0 else ":\n" + p.stdout + p.stderr))
        for b in ("canaryctl", "demo-backend"):
            check(run([root / "usr/bin" / b, "--help"]).returncode == 0, "extracted %s runs" % b)

        # The unit agrees with the package and the packaged config.
        u = unit_directives(root / UNIT)
        svc = u.get("Service", {})
        cfg = yaml.safe_load((root / CONFIG).read_text())

        def one(key):
            return (svc.get(key) or [None])[-1]

        for key, want in (("Type", "notify"), ("NotifyAccess", "all"),
                          ("ExecReload", "/bin/kill -HUP $MAINPID"),
                          ("StateDirectory", "canary-proxy"), ("DynamicUser", "yes"),
                          ("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                          ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
                          ("KillSignal", "SIGTERM")):
            check(one(key) == want, "unit %s=%s (%s)" % (key, want, one(key)))
        check(set((one("RestrictAddressFamilies") or "").split()) ==
              {"AF_INET", "AF_INET6", "AF_UNIX"}, "unit RestrictAddressFamilies=AF_INET AF_INET6 "
              "AF_UNIX (%s)" % one("RestrictAddressFamilies"))
        exec_start = (one("ExecStart") or "").split()
        check(exec_start[:1] == ["/usr/bin/canary-proxy"] and "usr/bin/canary-proxy" in files,
              "ExecStart runs the packaged /usr/bin/canary-proxy")
        check(exec_start[1:] == ["--config", "/" + CONFIG],
              "ExecStart uses the packaged config /%s (%s)" % (CONFIG, exec_start[1:]))
        check(os.path.dirname(cfg.get("state_file", "")) == "/var/lib/" + one("StateDirectory"),
              "packaged state_file %s is in the StateDirectory" % cfg.get("state_file"))
        drain = duration_s(cfg.get("timeouts", {}).get("drain", "15s"))
        stop = duration_s(one("TimeoutStopSec") or "90s")
        check(stop > drain, "TimeoutStopSec %ss > timeouts.drain %ss" % (stop, drain))
        check(u.get("Install", {}).get("WantedBy") == ["multi-user.target"],
              "WantedBy=multi-user.target")

        # systemd-analyze verify on the extracted root: the positive run, then copies with a
        # missing binary and an unknown directive, which it must report (so the first run did
        # look at the binary and the directives).
        vroot = verify_root(deb, tmp / "verify-root")
        check(run(["dpkg-query", "-S", "/bin/kill"]).stdout.split(":")[0] in depends,
              "Depends names the package of the unit's /bin/kill")
        rc, text = verify(vroot, vroot / UNIT)
        print("systemd-analyze verify --root=<root> /%s: rc=%d\n%s" % (UNIT, rc, text))
        check(rc == 0 and text == "", "systemd-analyze verify passes with no warning")
        unit_text = (vroot / UNIT).read_text()
        broken_bin = vroot / "lib/systemd/system/broken-bin.service"
        broken_bin.write_text(unit_text.replace("ExecStart=/usr/bin/canary-proxy",
                                                "ExecStart=/usr/bin/canary-proxy-missing"))
        rc, text = verify(vroot, broken_bin)
        check(rc != 0 and "canary-proxy-missing" in text,
              "systemd-analyze verify catches a missing ExecStart binary (rc=%d)" % rc)
        broken_key = vroot / "lib/systemd/system/broken-key.service"
        broken_key.write_text(unit_text.replace("PrivateTmp=yes", "PrivateTmpp=yes"))
        rc, text = verify(vroot, broken_key)
        check("PrivateTmpp" in text, "systemd-analyze verify reports an unknown directive")
        p = run(["systemd-analyze", "security", "--offline=yes", "--root=%s" % vroot,
                 "--no-pager", vroot / UNIT], timeout=60)
        m = re.search(r"Overall exposure level for \S+: ([\d.]+)", p.stdout + p.stderr)
        print("systemd-analyze security: %s" % (m.group(0) if m else (p.stdout + p.stderr)[-500:]))
        check(m is not None and float(m.group(1)) <= MAX_EXPOSURE,
              "systemd-analyze security exposure <= %.1f" % MAX_EXPOSURE)
    finish()


if __name__ == "__main__":
    main()
