#!/bin/bash
# make demo: the example edge fleet (states/) end to end on real hosts.
#
#   1. cfgm validate + one catalog: the tree compiles for every host;
#   2. testing/fleet up: real Debian hosts in three datacenters (first run builds the base image);
#   3. every host converges to its catalog (cfgm-agent apply inside each host over ssh, in parallel),
#      from the states repository cloned over git from the controller;
#   4. a second converge everywhere: zero changes;
#   5. the fleet stays up: `testing/fleet ssh HOST`, `make demo-down` to stop it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
CFGM=target/debug/cfgm
FLEET=testing/fleet
export FLEET_STATE=${FLEET_STATE:-/run/cfgm-fleet}
OUT=$FLEET_STATE/demo
bold() { if [ -t 1 ]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }

bold "== 1. cfgm validate: compile the catalog of every host in states/inventory.toml"
$CFGM --tree states validate
echo
bold "== cfgm catalog --host ams-edge1 (first lines; the whole catalog: $CFGM --tree states catalog --host ams-edge1)"
$CFGM --tree states catalog --host ams-edge1 | head -n 16
echo

bold "== 2. the fleet in a box: real Debian hosts, one network namespace each, three datacenters"
$FLEET up
$FLEET sync >/dev/null 2>&1 || true   # the served states repo and the agent binary are current
echo

converge() {   # $1 = round name; runs cfgm-agent apply in every host, in parallel
  local round=$1 pids=() h
  mkdir -p "$OUT/$round"
  while read -r h _; do
    (
      $FLEET ssh "$h" 'set -e
        if [ -d /var/lib/cfgm/tree/.git ]; then git -C /var/lib/cfgm/tree pull -q --ff-only
        else rm -rf /var/lib/cfgm/tree; mkdir -p /var/lib/cfgm; git clone -q git://controller/states /var/lib/cfgm/tree; fi
        cfgm-agent apply --tree /var/lib/cfgm/tree --json' >"$OUT/$round/$h.json" 2>"$OUT/$round/$h.err" || true
    ) &
    pids+=($!)
  done < <($FLEET spec)
  for p in "${pids[@]}"; do wait "$p"; done
  python3 - "$OUT/$round" states/inventory.toml <<'PY'
import json, os, sys, tomllib
out, inv = sys.argv[1], tomllib.load(open(sys.argv[2], "rb"))["hosts"]
rows, bad = [], 0
for f in sorted(os.listdir(out)):
    if not f.endswith(".json"): continue
    h = f[:-5]
    try:
        r = json.load(open(os.path.join(out, f)))
        c = r["counts"]
        rows.append((h, inv.get(h, {}).get("dc", "?"), inv.get(h, {}).get("role", "?"),
                     str(c["changed"]), str(c["unchanged"]), str(c["failed"] + c["skipped"]), "%.1f s" % r["seconds"]))
        bad += c["failed"] + c["skipped"]
        for res in r["resources"]:
            if res["outcome"] in ("failed", "skipped"):
                print("   %s: %s[%s] %s: %s" % (h, res["id"]["kind"], res["id"]["name"], res["outcome"], res.get("error", "")))
    except Exception:
        err = open(os.path.join(out, h + ".err")).read().strip().splitlines()
        rows.append((h, "?", "?", "-", "-", "error", (err[-1] if err else "no output")[:60]))
        bad += 1
w = [max(len(x[i]) for x in rows + [("host", "dc", "role", "changed", "unchanged", "failed", "time")]) for i in range(7)]
for row in [("host", "dc", "role", "changed", "unchanged", "failed", "time")] + rows:
    print("  " + "  ".join(v.ljust(w[i]) for i, v in enumerate(row)))
sys.exit(1 if bad else 0)
PY
}

bold "== 3. converge every host (cfgm-agent apply inside each host, in parallel)"
t0=$(date +%s)
converge first || { echo "some hosts did not converge; reports in $OUT/first/"; exit 1; }
echo "   all hosts converged in $(( $(date +%s) - t0 )) s"
echo
bold "== 4. converge again: nothing left to change"
converge second || { echo "second converge failed; reports in $OUT/second/"; exit 1; }
python3 - "$OUT/second" <<'PY'
import json, os, sys
d = sys.argv[1]
changed = sum(json.load(open(os.path.join(d, f)))["counts"]["changed"] for f in os.listdir(d) if f.endswith(".json"))
print("   changes on the second converge: %d" % changed)
sys.exit(1 if changed else 0)
PY
echo
bold "== 5. the fleet stays up for exploring"
echo "   testing/fleet status                 hosts, ssh, memory"
echo "   testing/fleet ssh ams-edge1          a shell on a host (try: curl -s localhost, cat /etc/motd)"
echo "   make demo-down                       stop the fleet"
