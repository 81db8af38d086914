"""packaging.config_reference: docs/config-reference.md documents exactly the keys the loader takes.

The loader's own answer is the source of truth: a config with a bogus key at a mapping level
fails `canary-proxy --check` with `unknown key "x" (expected one of: ...)`. Starting at the top
level, each allowed key is probed in turn (as a mapping, then as a list of mappings) to find the
nested levels, so a key added to the loader anywhere shows up here without editing this test.
Every key found must have a row in the reference (its full path, like `timeouts.client_header`,
`routes[].canary.sticky`, `upstreams.NAME.endpoints`), and every row must be a key the loader
takes. Each documented default must also be accepted by the loader where it stands.
"""

import copy
import json
import re

import yaml

from common import BIN, SOURCE, check, finish, run, scratch_dir

UNKNOWN = re.compile(r'^[^\n]*?: (\S+): unknown key "([^"]*)" \(expected one of: ([^)]*)\)$', re.M)
PROBE = "zz_bogus_key"
NAME = "u1"  # the upstream name used while probing: shown as NAME in the reference


def base_config(port):
    return {
        "upstreams": {NAME: {"endpoints": ["127.0.0.1:%d" % port]}},
        "routes": [{"name": "r1", "upstream": NAME}],
    }


class loader:
    def __init__(self, tmp):
        self.tmp = tmp
        self.n = 0

    def check(self, cfg):
        """(exit code, output) of canary-proxy --check on cfg (JSON is YAML)."""
        self.n += 1
        path = self.tmp / ("probe%d.yaml" % self.n)
        path.write_text(json.dumps(cfg))
        p = run([BIN / "canary-proxy", "--config", path, "--check"])
        return p.returncode, p.stdout + p.stderr


def container(existing, next_step):
    """`existing` if it can hold `next_step` (a list index or a key), else a new container."""
    want = list if isinstance(next_step, int) else dict
    return existing if isinstance(existing, want) else want()


def set_at(cfg, path, value):
    """cfg with `value` at `path` (a list of dict keys and list indexes), creating the way."""
    cfg = copy.deepcopy(cfg)
    node = cfg
    for i, step in enumerate(path):
        last = i == len(path) - 1
        nxt = None if last else path[i + 1]
        if isinstance(step, int):
            while len(node) <= step:
                node.append({})
            if last:
                node[step] = value
            else:
                node[step] = container(node[step], nxt)
                node = node[step]
        else:
            if last:
                node[step] = value
            else:
                node[step] = container(node.get(step), nxt)
                node = node[step]
    return cfg


def key_path(path):
    """The loader's spelling of a path: routes[0].canary.x."""
    out = ""
    for step in path:
        if isinstance(step, int):
            out += "[%d]" % step
        else:
            out += ("." if out else "") + step
    return out


def doc_path(path):
    """The reference's spelling: routes[].canary.x, upstreams.NAME.endpoints."""
    out = ""
    for step in path:
        if isinstance(step, int):
            out += "[]"
        else:
            out += ("." if out else "") + ("NAME" if step == NAME else step)
    return out


def allowed_at(ldr, cfg, path):
    """Keys the loader allows in the mapping at path, or None if it is not a fixed mapping."""
    rc, out = ldr.check(set_at(cfg, path + [PROBE], 1))
    for m in UNKNOWN.finditer(out):
        if m.group(1) == key_path(path + [PROBE]):
            return [k.strip() for k in m.group(3).split(",")]
    return None


def discover(ldr, cfg, path, found):
    """Adds every key path under the mapping at `path` to `found`."""
    keys = allowed_at(ldr, cfg, path)
    if keys is None:
        return False
    for k in keys:
        child = path + [k]
        found.add(doc_path(child))
        # A nested mapping? A list of mappings? A mapping from names to mappings (upstreams)?
        if discover(ldr, cfg, child, found):
            continue
        if discover(ldr, cfg, child + [0], found):
            continue
        if discover(ldr, cfg, child + [NAME], found):
            found.add(doc_path(child + [NAME]))
    return True


def documented(text):
    """{key path: default cell} of the reference's table rows whose first cell is a key path."""
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^\|\s*`([A-Za-z_][\w.\[\]]*)`\s*\|(.*)\|\s*$", line)
        if m:
            cells = [c.strip() for c in m.group(2).split("|")]
            rows[m.group(1)] = cells
    return rows


def main():
    text = (SOURCE / "docs" / "config-reference.md").read_text()
    docs = documented(text)
    with scratch_dir("configref") as tmp:
        ldr = loader(tmp)
        cfg = base_config(9)
        rc, out = ldr.check(cfg)
        check(rc == 0, "the probe's base config is valid" + ("" if rc == 0 else ":\n" + out))
        found = set()
        check(discover(ldr, cfg, [], found), "the loader lists the allowed top-level keys")
        print("loader keys (%d): %s" % (len(found), ", ".join(sorted(found))))
        for k in sorted(found):
            check(k in docs, "documented: %s" % k)
        for k in sorted(docs):
            check(k in found, "accepted by the loader: %s" % k)

        # Documented defaults of scalar keys are accepted where they stand.
        for k, cells in sorted(docs.items()):
            if k not in found or len(cells) < 2:
                continue
            m = re.fullmatch(r"`([^`]*)`(?: \(.*\))?", cells[1])
            if not m:
                continue
            value = m.group(1)
            try:
                value = json.loads(value)
            except ValueError:
                pass  # plain scalars: 10s, json
            path = []
            for part in re.findall(r"[^.\[\]]+|\[\]", k):
                path.append(0 if part == "[]" else (NAME if part == "NAME" else part))
            rc, out = ldr.check(set_at(cfg, path, value))
            check(rc == 0, "documented default %s = %s is accepted" % (k, cells[1]) +
                  ("" if rc == 0 else ":\n" + out))

    # config/canary-demo.yaml shows every optional key with its default: the reference agrees.
    demo = yaml.safe_load((SOURCE / "config" / "canary-demo.yaml").read_text())
    flat = {}

    def walk(node, path):
        if isinstance(node, dict) and path not in ("upstreams", "routes[].analysis"):
            for k, v in node.items():
                walk(v, (path + "." if path else "") + k)
        elif isinstance(node, list) and path == "routes":
            walk(node[0], "routes[]")
        else:
            flat[path] = node

    walk(demo, "")
    compared = 0
    for k, value in sorted(flat.items()):
        if k in ("upstreams", "routes[].name", "routes[].upstream", "routes[].steps",
                 "routes[].analysis"):
            continue  # required, or not a default in the demo (its analysis is tuned for it)
        cells = docs.get(k)
        m = cells and re.fullmatch(r"`([^`]*)`(?: \(.*\))?", cells[1])
        if not check(bool(m), "%s (in config/canary-demo.yaml) has a documented default" % k):
            continue
        doc_value = m.group(1)
        try:
            doc_value = json.loads(doc_value)
        except ValueError:
            pass
        compared += 1
        check(doc_value == value, "default of %s: reference %r, canary-demo.yaml %r" %
              (k, doc_value, value))
    check(compared >= 20, "compared %d defaults with config/canary-demo.yaml" % compared)
    finish()


if __name__ == "__main__":
    main()
