set -euo pipefail
[ -d /var/lib/cfgm-test/case ] || { echo "not inside the test container" >&2; exit 1; }
systemctl is-active --quiet cron
# cron runs the job at the next minute: wait for it (at most 100 s).
for _ in $(seq 100); do [ -s /var/tmp/cfgm-tick ] && break; sleep 1; done
if [ ! -s /var/tmp/cfgm-tick ]; then
  journalctl -u cron --no-pager -o short-precise || true
  stat -c '%n %y' /etc/cron.d /etc/cron.d/cfgm-tick
  systemctl show cron -p ExecMainStartTimestamp
  exit 1
fi
cat /var/tmp/cfgm-tick
grep -qE '^tick from ticker at [0-9]+$' /var/tmp/cfgm-tick
[ "$(stat -c %U /var/tmp/cfgm-tick)" = ticker ]
