"""packaging.compose: docker-compose.yml is valid and consistent with what it mounts, offline.

- `docker-compose config` (Debian's docker-compose) parses and normalizes the file;
- every canary-proxy config the proxy service mounts passes `canary-proxy --check`, with the
  compose service names resolving as they would on the compose network;
- the Prometheus config and rules it mounts pass `promtool check config` / `check rules`, and the
  rule files resolve to the same files inside the container as on the host;
- the pieces agree: the admin token secret, the state volume, published ports, the backends'
  listen ports (every demo backend an upstream of its colour), the scrape target, the drain time
  against stop_grace_period;
- the `fleet` profile: the default services keep no profile (a plain `up` is unchanged), etcd and
  the replicas are in `fleet` only; each replica's config checks, names the etcd service on the
  port its image listens on and waits for its health check; replica ids, state volumes and
  published host ports are distinct; etcd is not published to the host.
"""

import os
import posixpath
import re

import yaml

from common import (BIN, SOURCE, check, duration_s, finish, host_port, require, run,
                    scratch_dir, service_hosts_file, with_hosts)


def compose_config():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("COMPOSE_") and k != "CANARY_ADMIN_TOKEN_FILE"}
    p = run(["docker-compose", "--project-directory", str(SOURCE), "-f",
             str(SOURCE / "docker-compose.yml"), "config"], env=env)
    check(p.returncode == 0, "docker-compose config parses docker-compose.yml" +
          ("" if p.returncode == 0 else ":\n" + p.stderr))
    if p.returncode != 0:
        finish()
    return yaml.safe_load(p.stdout)


def binds(service):
    """{container path: host path} of a service's bind mounts (short syntax, normalized)."""
    out = {}
    for v in service.get("volumes", []):
        if isinstance(v, str):
            parts = v.split(":")
            if parts[0].startswith("/"):
                out[parts[1]] = parts[0]
        elif v.get("type") == "bind":
            out[v["target"]] = v["source"]
    return out


def named_volumes(service):
    out = {}
    for v in service.get("volumes", []):
        if isinstance(v, str):
            parts = v.split(":")
            if not parts[0].startswith("/") and len(parts) > 1:
                out[parts[1]] = parts[0]
        elif v.get("type") == "volume":
            out[v["target"]] = v["source"]
    return out


def published(service):
    """Container ports published by the service."""
    ports = set()
    for p in service.get("ports", []):
        if isinstance(p, dict):
            ports.add(int(p["target"]))
        else:
            ports.add(int(str(p).split("/")[0].split(":")[-1]))
    return ports


def flag(argv, name):
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(name + "="):
            return a[len(name) + 1:]
    return None


DEFAULT_SERVICES = {"proxy", "blue", "green", "yellow", "prometheus"}
FLEET_SERVICES = {"etcd", "fleet-a", "fleet-b"}


def proxy_secret_files(cfg, service):
    """{container path of each secret: its file on the host} for a service."""
    out = {}
    for s in service.get("secrets", []):
        source = s if isinstance(s, str) else s["source"]
        target = s if isinstance(s, str) else s.get("target") or source
        host_file = cfg.get("secrets", {}).get(source, {}).get("file")
        if host_file:
            out["/run/secrets/" + target] = host_file
    return out


def dockerfile_cmd_flag(context, name):
    """A --flag=value of the CMD in the Dockerfile of a build context (the etcd image)."""
    path = os.path.join(context, "Dockerfile")
    if not os.path.isfile(path):
        return None
    m = re.search(r'"%s=([^"]+)"' % re.escape(name), open(path).read())
    return m.group(1) if m else None


def check_fleet(cfg, services, names):
    for name, s in services.items():
        profiles = s.get("profiles") or []
        if name in DEFAULT_SERVICES:
            check(not profiles, "default service %s has no profile (%s)" % (name, profiles))
        elif name in FLEET_SERVICES:
            check(profiles == ["fleet"], "service %s is in the fleet profile only (%s)"
                  % (name, profiles))
        else:
            check(False, "service %s is known to this check" % name)
    if not all(n in services for n in FLEET_SERVICES):
        check(False, "fleet profile defines %s" % sorted(FLEET_SERVICES))
        return
    etcd = services["etcd"]
    check(not etcd.get("ports"), "etcd is not published to the host")
    check(bool((etcd.get("healthcheck") or {}).get("test")), "etcd has a health check")
    context = (etcd.get("build") or {}).get("context", "")
    client_urls = dockerfile_cmd_flag(context, "--listen-client-urls") or ""
    m = re.fullmatch(r"http://0\.0\.0\.0:(\d+)", client_urls)
    check(m is not None, "etcd image listens for clients on every interface (%r)" % client_urls)
    etcd_port = int(m.group(1)) if m else None

    replica_ids, state_volumes, host_ports = set(), set(), []
    for s in services.values():
        for p in s.get("ports", []):
            if isinstance(p, dict):
                host_ports.append(str(p.get("published")))
            else:
                host_ports.append(str(p).rsplit(":", 1)[0])
    check(len(host_ports) == len(set(host_ports)),
          "published host ports are distinct across profiles (%s)" % host_ports)

    for name in sorted(FLEET_SERVICES - {"etcd"}):
        s = services[name]
        argv = s.get("command") or []
        target = flag(argv, "--config")
        sbinds = binds(s)
        check(target in sbinds, "%s --config %s is a mounted file" % (name, target))
        if target not in sbinds:
            continue
        with scratch_dir("compose-" + name) as tmp:
            check_proxy_config(sbinds[target], names, tmp, proxy_secret_files(cfg, s))
        pc = yaml.safe_load(open(sbinds[target]))
        store = pc.get("state_store") or {}
        check(store.get("type") == "etcd", "%s: state_store.type etcd" % name)
        endpoints = (store.get("etcd") or {}).get("endpoints") or []
        check(bool(endpoints), "%s: etcd endpoints given" % name)
        for ep in endpoints:
            em = re.fullmatch(r"http://([^:/]+):(\d+)/?", ep)
            check(em is not None and em.group(1) == "etcd" and int(em.group(2)) == etcd_port,
                  "%s: endpoint %s is the etcd service on port %s" % (name, ep, etcd_port))
        dep = (s.get("depends_on") or {}).get("etcd") or {}
        check(dep.get("condition") == "service_healthy", "%s waits for etcd's health check" % name)
        admin = host_port(pc.get("admin", {}).get("listen", "127.0.0.1:9901"))
        listen = host_port(pc.get("listen", "127.0.0.1:8080"))
        for what, (host, port) in (("listen", listen), ("admin.listen", admin)):
            check(port in published(s), "%s: %s port %d is published" % (name, what, port))
        rid = (store.get("etcd") or {}).get("replica_id") or "%s-%d" % (s.get("hostname", ""),
                                                                      admin[1])
        check(s.get("hostname") or (store.get("etcd") or {}).get("replica_id"),
              "%s: a hostname or replica_id names the replica" % name)
        check(rid not in replica_ids, "%s: replica id %s is its own" % (name, rid))
        replica_ids.add(rid)
        state_dir = posixpath.dirname(pc.get("state_file", ""))
        volume = named_volumes(s).get(state_dir)
        check(volume is not None and volume not in state_volumes,
              "%s: state_file cache %s on its own named volume (%s)"
              % (name, pc.get("state_file"), volume))
        state_volumes.add(volume)
        drain = duration_s(pc.get("timeouts", {}).get("drain", "15s"))
        grace = duration_s(str(s.get("stop_grace_period", "10s")))
        check(grace > drain, "%s: stop_grace_period %ss > timeouts.drain %ss" % (name, grace, drain))


def check_proxy_config(host_path, service_names, tmp, secret_files):
    hosts = service_hosts_file(tmp / "hosts", service_names)
    cmd = [BIN / "canary-proxy", "--config", host_path, "--check"]
    shown = os.path.relpath(host_path, SOURCE)
    # --check reads what a start reads (admin.token_file): in a copy of the config, each compose
    # secret's container path (/run/secrets/NAME) names its file on the host.
    text = open(host_path).read()
    if any(path in text for path in secret_files):
        for path, host_file in secret_files.items():
            text = text.replace('"%s"' % path, '"%s"' % os.path.abspath(host_file))
        host_path = tmp / ("secrets-" + os.path.basename(host_path))
        host_path.write_text(text)
        cmd[2] = host_path
    wrapped = with_hosts(cmd, hosts)
    if wrapped is None:
        # Not root: substitute the service names instead (the rest of the file is checked as is).
        text = open(host_path).read()
        for n in service_names:
            text = re.sub(r'(["\s\[])%s:(\d+)' % re.escape(n), r"\g<1>127.0.0.1:\2", text)
        copy = tmp / os.path.basename(host_path)
        copy.write_text(text)
        print("note  no mount namespace: service names replaced by 127.0.0.1 in a copy")
        cmd[2] = copy
        wrapped = cmd
    p = run(wrapped)
    check(p.returncode == 0, "canary-proxy --check %s" % shown +
          ("" if p.returncode == 0 else ":\n" + p.stdout + p.stderr))


def main():
    require("docker-compose", "promtool")
    cfg = compose_config()
    services = cfg.get("services", {})
    for name in ("proxy", "blue", "green", "prometheus"):
        check(name in services, "service %s defined" % name)
    if not all(n in services for n in ("proxy", "blue", "green", "prometheus")):
        finish()
    names = list(services)
    proxy = services["proxy"]

    # Every file the services mount from the repository exists.
    for sname, s in services.items():
        for target, source in binds(s).items():
            check(os.path.isfile(source), "%s mounts %s from an existing file %s" %
                  (sname, target, os.path.relpath(source, SOURCE)))

    # The proxy's --config is one of its mounts; every canary-proxy config it mounts checks.
    argv = proxy.get("command") or []
    config_target = flag(argv, "--config")
    proxy_binds = binds(proxy)
    check(config_target in proxy_binds, "proxy --config %s is a mounted file" % config_target)
    proxy_configs = [src for tgt, src in proxy_binds.items() if src.endswith((".yaml", ".yml"))]
    check(len(proxy_configs) > 0, "proxy mounts a config")
    secret_files = {}
    for s in proxy.get("secrets", []):
        source = s if isinstance(s, str) else s["source"]
        target = s if isinstance(s, str) else s.get("target") or source
        host_file = cfg.get("secrets", {}).get(source, {}).get("file")
        if host_file:
            secret_files["/run/secrets/" + target] = host_file
    with scratch_dir("compose") as tmp:
        for src in proxy_configs:
            check_proxy_config(src, names, tmp, secret_files)
    if config_target not in proxy_binds:
        finish()
    pc = yaml.safe_load(open(proxy_binds[config_target]))

    # Admin token: a compose secret whose file exists and is not empty.
    token_file = pc.get("admin", {}).get("token_file", "")
    secrets = [s if isinstance(s, str) else s.get("target") or s["source"]
               for s in proxy.get("secrets", [])]
    m = re.fullmatch(r"/run/secrets/(.+)", token_file or "")
    check(m is not None and m.group(1) in secrets,
          "admin.token_file %r is a secret of the proxy service %s" % (token_file, secrets))
    if m and m.group(1) in cfg.get("secrets", {}):
        # The short syntax mounts secret `source` at /run/secrets/<source>.
        src = None
        for s in proxy.get("secrets", []):
            if (s if isinstance(s, str) else s.get("target") or s["source"]) == m.group(1):
                src = s if isinstance(s, str) else s["source"]
        secret_file = cfg["secrets"][src].get("file")
        ok = secret_file is not None and os.path.isfile(secret_file)
        check(ok and open(secret_file).read().strip() != "",
              "secret %s comes from a non-empty file %s" % (src, secret_file))

    # State file on a named volume, so a rollout survives `docker compose down`/`up`.
    state_dir = posixpath.dirname(pc.get("state_file", ""))
    check(state_dir in named_volumes(proxy),
          "state_file %s is on a named volume %s" % (pc.get("state_file"), named_volumes(proxy)))

    # Listeners: reachable from outside the container and published.
    listen = host_port(pc.get("listen", "127.0.0.1:8080"))
    admin = host_port(pc.get("admin", {}).get("listen", "127.0.0.1:9901"))
    for what, (host, port) in (("listen", listen), ("admin.listen", admin)):
        check(host in ("0.0.0.0", "::", "[::]"), "%s binds every interface of the container (%s)"
              % (what, host))
        check(port in published(proxy), "%s port %d is published" % (what, port))

    # Each upstream endpoint is a backend service listening on that port, with its health check.
    for uname, u in pc.get("upstreams", {}).items():
        for ep in u.get("endpoints", []):
            host, port = host_port(ep)
            check(host in services, "upstream %s endpoint %s names a service" % (uname, ep))
            if host not in services:
                continue
            s = services[host]
            argv = (s.get("entrypoint") or []) + (s.get("command") or [])
            lport = host_port(flag(argv, "--listen") or ":0")[1]
            check(lport == port, "service %s listens on %d (%s)" % (host, port, argv))
            env = s.get("environment") or {}
            check(str(env.get("CANARY_HEALTH_PORT")) == str(port),
                  "service %s health check probes port %d" % (host, port))
            deps = proxy.get("depends_on") or {}
            check(host in deps, "proxy depends on %s (names resolve at load)" % host)

    # The other way round: every demo backend serves an upstream of its own colour.
    upstream_hosts = {host_port(ep)[0]: uname for uname, u in pc.get("upstreams", {}).items()
                      for ep in u.get("endpoints", [])}
    for sname, s in services.items():
        argv = (s.get("entrypoint") or []) + (s.get("command") or [])
        if "demo-backend" not in argv:
            continue
        check(sname in upstream_hosts, "demo backend %s is an upstream endpoint" % sname)
        check(flag(argv, "--color") == upstream_hosts.get(sname),
              "demo backend %s has the colour of its upstream %s (%s)"
              % (sname, upstream_hosts.get(sname), argv))

    # Drain fits in the stop grace period (docker's default is 10s).
    drain = duration_s(pc.get("timeouts", {}).get("drain", "15s"))
    grace = duration_s(str(proxy.get("stop_grace_period", "10s")))
    check(grace > drain, "stop_grace_period %ss > timeouts.drain %ss" % (grace, drain))

    check_fleet(cfg, services, names)

    # Prometheus: config and rules check, the rule files are the mounted ones, the target is the
    # proxy's admin listener.
    prom = services["prometheus"]
    prom_binds = binds(prom)
    prom_cfg_target = "/etc/prometheus/prometheus.yml"
    check(prom_cfg_target in prom_binds, "prometheus mounts %s" % prom_cfg_target)
    if prom_cfg_target in prom_binds:
        host_cfg = prom_binds[prom_cfg_target]
        p = run(["promtool", "check", "config", host_cfg])
        check(p.returncode == 0, "promtool check config %s\n%s" %
              (os.path.relpath(host_cfg, SOURCE), (p.stdout + p.stderr).rstrip()))
        pcfg = yaml.safe_load(open(host_cfg))
        for rf in pcfg.get("rule_files", []):
            in_container = posixpath.normpath(
                posixpath.join(posixpath.dirname(prom_cfg_target), rf))
            on_host = os.path.normpath(os.path.join(os.path.dirname(host_cfg), rf))
            check(prom_binds.get(in_container) == on_host,
                  "rule file %s is %s in the container too"
                  % (rf, os.path.relpath(on_host, SOURCE)))
            p = run(["promtool", "check", "rules", on_host])
            check(p.returncode == 0, "promtool check rules %s\n%s" %
                  (os.path.relpath(on_host, SOURCE), (p.stdout + p.stderr).rstrip()))
        targets = [t for sc in pcfg.get("scrape_configs", [])
                   for stc in sc.get("static_configs", []) for t in stc.get("targets", [])]
        check("proxy:%d" % admin[1] in targets,
              "prometheus scrapes proxy:%d (targets %s)" % (admin[1], targets))
        paths = [sc.get("metrics_path", "/metrics") for sc in pcfg.get("scrape_configs", [])]
        check(paths and all(p == "/metrics" for p in paths), "scrape path /metrics")

    finish()


if __name__ == "__main__":
    main()
