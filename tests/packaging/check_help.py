"""packaging.help_*: `--help` of each binary documents every flag, command and signal it handles.

What the binary handles is read from its argument parser's source (the flag literals it compares
against, canaryctl's command table, the signals the server waits for, the environment variables
it reads), so a flag added to the parser without a line in the help fails here.

Usage: check_help.py canary-proxy | canaryctl | demo-backend
"""

import re
import sys

from common import BIN, SOURCE, check, finish, run


def mentioned(text, word):
    return re.search(r"(?<![\w-])" + re.escape(word) + r"(?![\w-])", text) is not None


def source_of(path):
    """The text of a C++ source, or of every .cpp of a directory (canaryctl is split in files)."""
    p = SOURCE / path
    if p.is_dir():
        return "".join(f.read_text() for f in sorted(p.glob("*.cpp")))
    return p.read_text()


def flags_in(path, var):
    """Flag literals compared with `var` in a C++ source: var == "--x", var.starts_with("--x=")."""
    src = source_of(path)
    found = set(re.findall(r'\b%s\s*[!=]=\s*"(-[\w-]*)"' % var, src))
    found |= set(re.findall(r'\b%s\.starts_with\("(--[\w-]+)=?"\)' % var, src))
    return found


def help_of(binary, *args):
    p = run([BIN / binary] + list(args), timeout=10)
    check(p.returncode == 0, "%s %s exits 0" % (binary, " ".join(args)))
    check(p.stdout.strip() != "",
          "%s %s prints the help on standard output" % (binary, " ".join(args)))
    return p.stdout


def check_all(binary, text, what, items):
    check(len(items) > 0, "%s: found %s in the source" % (binary, what))
    for item in sorted(items):
        check(mentioned(text, item), "%s --help mentions %s %s" % (binary, what[:-1], item))


def envs_in(*paths):
    names = set()
    for p in paths:
        names |= set(re.findall(r'getenv\("([A-Z_][A-Z0-9_]*)"\)', source_of(p)))
    return names


def canary_proxy():
    text = help_of("canary-proxy", "--help")
    check(help_of("canary-proxy", "-h") == text, "canary-proxy -h prints the same help")
    check_all("canary-proxy", text, "flags", flags_in("proxy/canary_proxy_main.cpp", "a"))
    server = (SOURCE / "proxy/core/proxy_server.cpp").read_text()
    signals = set()
    for m in re.finditer(r"signal_set\s+\w+\(([^)]*)\)|signals\.add\((SIG\w+)\)", server):
        signals |= set(re.findall(r"SIG[A-Z0-9]+", m.group(0)))
    check_all("canary-proxy", text, "signals", signals)
    for env in envs_in("proxy/canary_proxy_main.cpp"):
        check(mentioned(text, env), "canary-proxy --help mentions environment variable " + env)
    p = run([BIN / "canary-proxy", "--no-such-flag"], timeout=10)
    check(p.returncode == 2 and "Usage" in p.stderr,
          "canary-proxy with an unknown flag exits 2 with the usage on standard error")


def canaryctl():
    text = help_of("canaryctl", "--help")
    check(help_of("canaryctl", "-h") == text, "canaryctl -h prints the same help")
    check(help_of("canaryctl", "help") == text, "canaryctl help prints the same help")
    src = source_of("proxy/ctl")
    commands = re.findall(r'\{"([a-z][a-z-]*)",\s*\d+,\s*"([^"]*)"\}', src)
    check(len(commands) > 0, "canaryctl: found the command table in the source")
    for name, synopsis in commands:
        check(mentioned(text, name), "canaryctl --help mentions command " + name)
        check(synopsis in text, "canaryctl --help shows the synopsis '%s'" % synopsis)
    check_all("canaryctl", text, "flags", flags_in("proxy/ctl", "name"))
    for env in envs_in("proxy/ctl"):
        check(mentioned(text, env), "canaryctl --help mentions environment variable " + env)


def demo_backend():
    text = help_of("demo-backend", "--help")
    check_all("demo-backend", text, "flags", flags_in("proxy/demo/demo_backend.cpp", "name"))


def main():
    modes = {"canary-proxy": canary_proxy, "canaryctl": canaryctl, "demo-backend": demo_backend}
    modes[sys.argv[1]]()
    finish()


if __name__ == "__main__":
    main()
