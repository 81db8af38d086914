"""Writes a large valid config for timing `canary-proxy --check` (not a test by itself).

Usage: python3 tests/e2e/gen_config.py ROUTES [UPSTREAMS] [--hosts] > big.yaml
Each route has its own name, a host out of 100 and its own path_prefix, a header override and
four steps; the upstreams (ROUTES / 2 by default) have two numeric endpoints each, so no name is
resolved and the figure is the loader's own work. With --hosts every route has path_prefix "/"
and a host of its own instead (virtual hosts: the routes differ only by their hosts).
"""

import sys


def config(routes, upstreams, by_host=False):
    out = ['listen: "127.0.0.1:0"', "admin: {listen: \"127.0.0.1:0\"}", "upstreams:"]
    for u in range(upstreams):
        out.append('  u%d: {endpoints: ["127.0.%d.%d:9001", "127.0.%d.%d:9002"]}'
                   % (u, u // 250 % 250, u % 250 + 1, u // 250 % 250, u % 250 + 1))
    out.append("routes:")
    for r in range(routes):
        out += ["  - name: r%d" % r,
                "    hosts: [h%d.example]" % (r if by_host else r % 100),
                "    path_prefix: %s" % ("/" if by_host else "/p%d" % r),
                "    upstream: u%d" % (r % upstreams),
                "    canary: {by_header: X-Canary, by_cookie: canary}",
                "    steps: [{setWeight: 20}, {pause: {}}, {setWeight: 50},"
                " {pause: {duration: 30s}}]"]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--hosts"]
    n = int(args[0])
    u = int(args[1]) if len(args) > 1 else max(1, n // 2)
    sys.stdout.write(config(n, u, "--hosts" in sys.argv))
