#!/bin/bash
# make demo: the example edge fleet (states/) end to end on real hosts, rolled out in canary waves
# and then kept converged by the agent.
#
#   1. cfgm validate + one catalog: the tree compiles for every host (and rollout.toml is valid);
#   2. testing/fleet up: real Debian hosts in three datacenters (first run builds the base image),
#      with Prometheus on the controller scraping every host's node exporter;
#   3. the states tree becomes a release: a commit on release/demo of the repository the
#      controller serves (git://controller/states), SSH-signed with the fleet's release key;
#   4. cfgm bootstrap: the agent, its config and the release key onto every host over SSH
#      (enabled, not started: the rollout decides when each host converges);
#   5. cfgm apply --commit: the release rolls out as states/rollout.toml says — 1 canary, then
#      1 host per datacenter, then the rest — each host's own agent fetching, verifying and
#      converging the commit, HTTP and PromQL health gates after each wave; then main moves to
#      the release and every agent starts following it, with nothing left to change;
#   6. a commit signed by a key no host trusts is pushed: every host refuses it and stays
#      converged on the good commit;
#   7. a signed commit on top (the same tree): every host takes it, with zero changes;
#   8. a one-line change to a data file, as a commit nobody rolled out: `cfgm diff` shows what it
#      changes in each host's catalog, `cfgm plan` what it would change on each host, from the
#      facts the agents gathered (fetched over SSH);
#   9. the fleet stays up: `testing/fleet ssh HOST`, `make demo-down` to stop it.
# Run again, the release rolls out with zero changes on every host.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
CFGM=target/debug/cfgm
FLEET=testing/fleet
export FLEET_STATE=${FLEET_STATE:-/run/cfgm-fleet}
OUT=$FLEET_STATE/demo
REPO=$FLEET_STATE/git/states
bold() { if [ -t 1 ]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }
now() { date +%s; }
hosts() { $FLEET spec | awk '{print $1}'; }

# The first whole run a host's agent reported for a pull that fetched COMMIT, summarised (run
# inside a host: python3 - COMMIT); prints nothing while there is none.
HOST_REPORT='
import json, os, sys
d, commit = "/var/lib/cfgm/reports/history", sys.argv[1]
since = float(sys.argv[2]) if len(sys.argv) > 2 else 0   # only runs written since then (Unix time)
for n in sorted(os.listdir(d)) if os.path.isdir(d) else []:
    if not n.endswith(".json") or os.path.getmtime(os.path.join(d, n)) < since:
        continue
    r = json.load(open(os.path.join(d, n)))
    p = r.get("pull") or {}
    if p.get("fetched") != commit or r["status"] == "stopped":   # stopped: a restart cut the run short
        continue
    try:
        applied = open("/var/lib/cfgm/applied-commit").read().strip()
    except OSError:
        applied = ""
    bad = [x for x in r["resources"] if x["outcome"] in ("failed", "skipped")]
    print(json.dumps({"verdict": p.get("verdict"), "reason": p.get("reason", ""),
                      "commit": p.get("converged_to") or "", "applied": applied, "status": r["status"],
                      "changed": r["counts"]["changed"], "failed": len(bad), "seconds": r["seconds"],
                      "problems": ["%s[%s]: %s" % (x["id"]["kind"], x["id"]["name"], x.get("error", "")) for x in bad]}))
    break
'

# wait_reports ROUND COMMIT TIMEOUT [SINCE]: until every host has a report of a pull that fetched
# COMMIT (written since Unix time SINCE) in $OUT/ROUND/HOST.json; 1 on timeout
wait_reports() {
  local round=$1 commit=$2 timeout=$3 since=${4:-0} t0 n total h
  rm -rf "${OUT:?}/$round"; mkdir -p "$OUT/$round"
  t0=$(now); total=$(hosts | wc -l)
  while :; do
    for h in $(hosts); do
      [ -s "$OUT/$round/$h.json" ] && continue
      $FLEET ssh "$h" python3 - "$commit" "$since" <<<"$HOST_REPORT" >"$OUT/$round/$h.json" 2>/dev/null &
    done
    wait
    n=$(find "$OUT/$round" -name '*.json' -size +0 | wc -l)
    [ "$n" = "$total" ] && { [ -t 1 ] && printf '\r\033[K'; return 0; }
    if [ "$(( $(now) - t0 ))" -ge "$timeout" ]; then
      [ -t 1 ] && printf '\r\033[K'
      echo "   only $n of $total hosts reported a run of ${commit:0:12} within ${timeout}s; waiting for:"
      for h in $(hosts); do [ -s "$OUT/$round/$h.json" ] || echo "     $h (log: testing/fleet ssh $h journalctl -u cfgm-agent)"; done
      return 1
    fi
    [ -t 1 ] && printf '\r   %d/%d hosts have reported a run of %s (%ds)' "$n" "$total" "${commit:0:12}" "$(( $(now) - t0 ))"
    sleep 1
  done
}

# table ROUND: the per-host table from the agents' reports; exit 1 if a host failed
table() {
  python3 - "$OUT/$1" "$FLEET_STATE/inventory.toml" <<'PY'
import json, os, sys, tomllib
out, inv = sys.argv[1], tomllib.load(open(sys.argv[2], "rb"))["hosts"]
head = ("host", "dc", "role", "pull", "commit", "status", "changed", "failed", "time")
rows, bad = [], 0
for f in sorted(os.listdir(out)):
    h, r = f[:-5], json.load(open(os.path.join(out, f)))
    rows.append((h, inv.get(h, {}).get("dc", "?"), inv.get(h, {}).get("role", "?"), r["verdict"], r["commit"][:12],
                 r["status"], str(r["changed"]), str(r["failed"]), "%.1f s" % r["seconds"]))
    bad += r["failed"] + (r["status"] != "converged")
    for p in r["problems"]:
        print("   %s: %s" % (h, p))
w = [max(len(x[i]) for x in rows + [head]) for i in range(len(head))]
for row in [head] + rows:
    print("  " + "  ".join(v.ljust(w[i]) for i, v in enumerate(row)).rstrip())
sys.exit(1 if bad else 0)
PY
}

# check ROUND PYTHON-EXPR MESSAGE: every host's summary r satisfies the expression
check() {
  python3 - "$OUT/$1" "$2" "$3" <<'PY'
import json, os, sys
out, expr, msg = sys.argv[1:4]
bad = [f[:-5] for f in sorted(os.listdir(out)) if not eval(expr, {}, {"r": json.load(open(os.path.join(out, f)))})]
print("   %s: %s" % ("every host" if not bad else "NOT " + ", ".join(bad), msg))
sys.exit(1 if bad else 0)
PY
}

reload_all() {   # SIGHUP every agent: a cycle now instead of at the end of its interval
  local h
  for h in $(hosts); do $FLEET ssh "$h" systemctl reload cfgm-agent & done
  wait
}

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

bold "== 3. the states tree as a signed release on git://controller/states (branch release/demo)"
good=$($FLEET commit --branch release/demo -m "make demo: the example states tree")
git -c safe.directory='*' --git-dir="$REPO" log -1 --format='   %H  %s%n   signed: %GG' "$good" | sed '/^$/d'
echo "   every host will trust only: $(cut -d' ' -f1-3 "$FLEET_STATE/signing/allowed_signers" | cut -c1-90)…"
echo

SSH_ARGS=(--identity "$FLEET_STATE/keys/id_ed25519" --known-hosts "$FLEET_STATE/known_hosts")
bold "== 4. cfgm bootstrap: the agent onto every host over SSH (enabled, not started)"
$CFGM --tree states bootstrap --no-start --repo git://controller/states \
  --allowed-signers "$FLEET_STATE/signing/allowed_signers" --agent-binary "$FLEET_STATE/bin/cfgm-agent" \
  --interval "${FLEET_AGENT_INTERVAL:-30}" --splay "${FLEET_AGENT_SPLAY:-5}" "${SSH_ARGS[@]}"
echo

bold "== 5. cfgm apply --commit ${good:0:12}: canary -> one per datacenter -> the rest (states/rollout.toml)"
t0=$(now)
mkdir -p "$OUT"
$CFGM --tree states apply --commit "$good" --repo "$REPO" --yes --journal-dir "$OUT/rollouts" "${SSH_ARGS[@]}" \
  || { echo "   the rollout did not finish: cfgm --tree states rollouts --journal-dir $OUT/rollouts"; exit 1; }
echo "   rolled out in $(( $(now) - t0 )) s; journal in $OUT/rollouts"
$FLEET promote "$good"
started=$(date +%s.%N)   # to the nanosecond: a rollout report written in the same second must not count
# a running agent (a second demo run) is woken for a cycle now; a stopped one starts with one
for h in $(hosts); do
  $FLEET ssh "$h" 'systemctl -q is-active cfgm-agent && systemctl reload cfgm-agent || systemctl start cfgm-agent' &
done
wait
echo "   main is now ${good:0:12}; every agent follows main from here on"
wait_reports converge "$good" 300 "$started" || exit 1
table converge || { echo "   some hosts did not converge; reports in $OUT/converge/"; exit 1; }
check converge "r['verdict'] in ('fresh', 'unchanged') and r['applied'] == '$good' and r['changed'] == 0" \
  "at ${good:0:12}, nothing left to change" || exit 1
echo

bold "== 6. a commit signed by an UNTRUSTED key is pushed"
rm -rf "$OUT/untrusted-tree"; cp -a states "$OUT/untrusted-tree"
sed -i 's/^motd_banner = .*/motd_banner = "UNTRUSTED: this line must never reach a host."/' "$OUT/untrusted-tree/data/common.toml"
bad=$($FLEET commit --untrusted --tree "$OUT/untrusted-tree" -m "make demo: a change signed by a stranger")
echo "   $bad  (the motd banner changed), git verify-commit says:"
git -c safe.directory='*' --git-dir="$REPO" verify-commit "$bad" 2>&1 | sed 's/^/     /' || true
t0=$(now)
reload_all
wait_reports refused "$bad" 180 || exit 1
table refused || exit 1
check refused "r['verdict'] == 'refused' and r['commit'] == r['applied'] == '$good'" \
  "refused ${bad:0:12} and stayed on ${good:0:12} ($(( $(now) - t0 )) s)" || exit 1
first=$(hosts | head -n 1)
echo "   why ($first): $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["reason"])' "$OUT/refused/$first.json")"
leaked=0
for h in $(hosts); do
  if $FLEET ssh "$h" grep -q UNTRUSTED /etc/motd; then echo "   $h: the untrusted banner is in /etc/motd!"; leaked=1; fi
done
[ $leaked = 0 ] || exit 1
echo "   no host's /etc/motd carries the untrusted banner"
echo

bold "== 7. a signed commit on top: every host takes it; nothing left to change"
fixed=$($FLEET commit -m "make demo: the example states tree, signed again")
reload_all
wait_reports resigned "$fixed" 180 || exit 1
table resigned || exit 1
check resigned "r['verdict'] == 'fresh' and r['changed'] == 0 and r['applied'] == '$fixed'" \
  "took ${fixed:0:12} with 0 changes" || exit 1
echo

bold "== 8. a one-line change, planned before it ships: cfgm diff and cfgm plan from the hosts' real facts"
rm -rf "$OUT/change"; cp -a states "$OUT/change"
sed -i 's/^"net.core.somaxconn" = 1024$/"net.core.somaxconn" = 2048/' "$OUT/change/data/common.toml"
grep -q '^"net.core.somaxconn" = 2048$' "$OUT/change/data/common.toml" || { echo "   the somaxconn line in data/common.toml moved"; exit 1; }
# (the change starts from main: a branch left by an earlier run is dropped)
git -c safe.directory='*' --git-dir="$REPO" update-ref -d refs/heads/demo-change 2>/dev/null || true
change=$($FLEET commit --branch demo-change --tree "$OUT/change" -m "make demo: net.core.somaxconn 2048" 2>/dev/null)
echo "   data/common.toml: \"net.core.somaxconn\" = 1024 -> 2048, as commit ${change:0:12} (branch demo-change, not rolled out)"
echo "\$ cfgm diff --from ${fixed:0:12} --to ${change:0:12}      # what the commit changes in every host's catalog"
$CFGM diff --repo "$REPO" --from "$fixed" --to "$change"
echo "\$ cfgm facts fetch --out $OUT/facts                 # each host's facts, over SSH"
rm -rf "$OUT/facts"
$CFGM --tree states facts fetch --out "$OUT/facts" "${SSH_ARGS[@]}"
echo "\$ cfgm --tree $OUT/change plan --facts $OUT/facts   # what an apply would change, per host"
$CFGM --tree "$OUT/change" plan --facts "$OUT/facts"
db=$(hosts | grep -m1 -- '-db' || hosts | head -n 1)
echo "\$ testing/fleet ssh $db cfgm-agent apply --commit ${change:0:12} --dry-run"
echo "                                        # the host's own agent, verifying the commit itself: a line per resource, then its plan"
$FLEET ssh "$db" cfgm-agent apply --commit "$change" --dry-run 2>&1 | sed 's/^/   /' \
  || { echo "   the agent's dry run on $db failed"; exit 1; }
echo

bold "== 9. the fleet stays up, every agent keeps converging (every ${FLEET_AGENT_INTERVAL:-30} s)"
addr=$(awk -v h="$first" '$1 == h {print $3}' "$FLEET_STATE/hosts.list")
hint() { printf '   %-64s %s\n' "$1" "$2"; }
hint "testing/fleet status" "hosts, ssh, memory"
hint "testing/fleet ssh $first journalctl -u cfgm-agent" "an agent's log"
hint "testing/fleet ssh $first cat /var/lib/cfgm/reports/last.json" "its last report"
hint "curl -s http://$addr:9100/metrics | grep ^cfgm_" "its metrics, through node exporter"
hint "testing/fleet commit -m MSG" "sign and serve the states/ tree as it is"
hint "make demo-down" "stop the fleet"
