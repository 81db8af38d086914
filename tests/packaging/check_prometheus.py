"""packaging.prometheus: the compose demo's Prometheus config and recording rules.

- `promtool check config` / `check rules` pass;
- `promtool test rules` (prometheus_rules_test.yml): per-variant request rate, success rate (0
  when every answer failed, no sample without traffic), p99 and traffic share on fixed series;
- every metric the rules read is exported by a live canary-proxy during a rollout, with the
  labels the rules group by, and the scrape passes `promtool check metrics`.
"""

import json
import re
import urllib.request

import yaml

from common import (BIN, SOURCE, check, finish, free_port, http_get, processes, require, run,
                    scratch_dir, wait_http)

PROM = SOURCE / "config" / "prometheus"


def promtool(*args, stdin=None):
    p = run(["promtool"] + [str(a) for a in args], input=stdin, timeout=60)
    out = (p.stdout + p.stderr).rstrip()
    check(p.returncode == 0, "promtool %s\n%s" % (" ".join(
        str(a).replace(str(SOURCE) + "/", "") for a in args), out))
    return p


def api(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status, json.loads(r.read() or b"null")


def main():
    require("promtool")
    promtool("check", "config", PROM / "prometheus.yml")
    promtool("check", "rules", PROM / "rules.yml")
    promtool("test", "rules", SOURCE / "tests" / "packaging" / "prometheus_rules_test.yml")

    rules = yaml.safe_load((PROM / "rules.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    names = sorted({n for e in exprs for n in re.findall(r"\bcanary_proxy_\w+", e)})
    check(len(names) > 0, "rules read canary-proxy metrics: %s" % names)

    with scratch_dir("prometheus") as tmp, processes() as procs:
        blue, green, admin = free_port(), free_port(), free_port()
        procs.start([BIN / "demo-backend", "--listen", "127.0.0.1:%d" % blue, "--color", "blue"])
        procs.start([BIN / "demo-backend", "--listen", "127.0.0.1:%d" % green, "--color", "green"])
        data = free_port()
        config = tmp / "proxy.yaml"
        config.write_text(
            'listen: "127.0.0.1:%d"\n'
            'admin: { listen: "127.0.0.1:%d" }\n'
            'state_file: state.json\n'
            'upstreams:\n'
            '  blue: { endpoints: ["127.0.0.1:%d"] }\n'
            '  green: { endpoints: ["127.0.0.1:%d"] }\n'
            'routes:\n'
            '  - name: demo\n'
            '    upstream: blue\n'
            '    steps: [ { setWeight: 50 }, { pause: {} } ]\n' % (data, admin, blue, green))
        procs.start([BIN / "canary-proxy", "--config", config])
        base = "http://127.0.0.1:%d" % admin
        wait_http(base + "/readyz")
        wait_http("http://127.0.0.1:%d/healthz" % blue)
        wait_http("http://127.0.0.1:%d/healthz" % green)
        status, _ = api("PUT", base + "/api/v1/rollouts/demo/upstream", {"upstream": "green"})
        check(status == 200, "rollout to green started")
        colors = [http_get("http://127.0.0.1:%d/color" % data)[1] for _ in range(20)]
        check('"blue"' in colors and '"green"' in colors,
              "traffic reaches both variants (%d green of 20)" % colors.count('"green"'))
        status, scrape = http_get(base + "/metrics")
        check(status == 200, "GET /metrics")

    for name in names:
        samples = re.findall(r"^%s\{([^}]*)\}" % re.escape(name), scrape, re.M)
        labels = [dict(re.findall(r'(\w+)="([^"]*)"', s)) for s in samples]
        variants = {l.get("variant") for l in labels if l.get("route") == "demo"}
        check({"stable", "canary"} <= variants,
              "%s has route=\"demo\" samples for both variants (%s)" % (name, sorted(
                  v for v in variants if v)))
        if name.endswith("_bucket"):
            check(all("le" in l for l in labels), "%s samples have le" % name)
    promtool("check", "metrics", stdin=scrape)
    finish()


if __name__ == "__main__":
    main()
