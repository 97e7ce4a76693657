#!/usr/bin/env python3
"""Print the fleet spec as lines "name dcN address dcname" from a states-tree inventory.

usage: spec.py INVENTORY.toml [SELECTION [OUT.toml [KEY=VALUE...]]]
  SELECTION (FLEET_HOSTS): empty or "all" = every host; a number N = N hosts picked
  round-robin across datacenters (more than the inventory has: extra hosts are
  synthesized, named <dc>-x<k>); otherwise a comma/space separated list of names.

Only addresses 10.77.N.H (N 1..250, H 2..250, H != 254) are accepted: the fleet
never creates or dials anything else. Unknown inventory fields are ignored.
With OUT.toml, also writes the selected hosts (all their inventory fields) plus a
[fleet] table of KEY=VALUE strings to OUT.toml.
"""
import json
import os
import re
import sys
import tomllib

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,11}$")  # <= 12 chars: veth "fl-<name>" <= 15


def fail(msg):
    print(f"fleet spec: {msg}", file=sys.stderr)
    sys.exit(2)


def parse_addr(name, addr):
    m = re.fullmatch(r"10\.77\.(\d{1,3})\.(\d{1,3})", str(addr))
    if not m:
        fail(f"host {name}: address {addr!r} is not in 10.77.0.0/16")
    n, h = int(m.group(1)), int(m.group(2))
    if not (1 <= n <= 250 and 2 <= h <= 250):
        fail(f"host {name}: address {addr} must be 10.77.N.H with N in 1..250, H in 2..250")
    return n


def main():
    if len(sys.argv) < 2:
        fail("usage: spec.py INVENTORY.toml [SELECTION]")
    with open(sys.argv[1], "rb") as f:
        inv = tomllib.load(f)
    sel = (sys.argv[2] if len(sys.argv) > 2 else "").strip()
    hosts = []
    dc_of_n = {}
    for name, h in (inv.get("hosts") or {}).items():
        if not NAME.match(name):
            fail(f"host name {name!r}: 1-12 chars of [a-z0-9-] expected")
        if not isinstance(h, dict) or "address" not in h or "dc" not in h:
            fail(f"host {name}: needs dc and address")
        n = parse_addr(name, h["address"])
        dc = str(h["dc"])
        if dc_of_n.setdefault(n, dc) != dc:
            fail(f"host {name}: subnet 10.77.{n}.0/24 already belongs to dc {dc_of_n[n]}")
        hosts.append((name, n, h["address"], dc))
    if not hosts:
        fail(f"no [hosts.*] in {sys.argv[1]}")
    seen = set()
    for _, _, a, _ in hosts:
        if a in seen:
            fail(f"address {a} used twice")
        seen.add(a)

    if sel in ("", "all"):
        out = hosts
    elif sel.isdigit():
        want = int(sel)
        if want < 1:
            fail("FLEET_HOSTS must be >= 1")
        by_dc = {}
        for h in hosts:
            by_dc.setdefault(h[1], []).append(h)
        out, i = [], 0
        while len(out) < min(want, len(hosts)):  # round-robin across datacenters
            for n in sorted(by_dc):
                if i < len(by_dc[n]) and len(out) < want:
                    out.append(by_dc[n][i])
            i += 1
        k = 0
        dcs = sorted(by_dc)
        while len(out) < want:  # synthesize extra hosts, spread over the datacenters
            n = dcs[k % len(dcs)]
            dc = dc_of_n[n]
            idx = k // len(dcs) + 1
            addr = f"10.77.{n}.{100 + idx}"
            if 100 + idx > 250:
                fail("too many hosts requested")
            name = f"{dc[:6]}-x{idx}"
            k += 1
            if addr in seen:
                continue
            out.append((name, n, addr, dc))
    else:
        names = [s for s in re.split(r"[,\s]+", sel) if s]
        byname = {h[0]: h for h in hosts}
        for s in names:
            if s not in byname:
                fail(f"FLEET_HOSTS names unknown host {s!r}")
        out = [byname[s] for s in names]
    if len(sys.argv) > 3:  # write the fleet's inventory (all original fields + ssh access)
        write_inventory(sys.argv[3], inv, out, sys.argv[4:])
    for name, n, addr, dc in out:
        print(name, n, addr, dc)


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    return json.dumps(str(v))


def write_inventory(path, inv, out, extra):
    """extra: key=value pairs for the [fleet] table (paths to ssh material)."""
    lines = ["# Written by testing/fleet: the hosts of the running fleet in a box.", "", "[fleet]"]
    for kv in extra:
        k, _, v = kv.partition("=")
        lines.append(f"{k} = {json.dumps(v)}")
    src = inv.get("hosts") or {}
    for name, n, addr, dc in out:
        h = dict(src.get(name) or {"dc": dc, "role": "extra", "address": addr})
        h["dc_net"] = n
        lines += ["", f"[hosts.{name}]"]
        lines += [f"{k} = {toml_value(v)}" for k, v in h.items()]
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(path + ".tmp", path)


main()
