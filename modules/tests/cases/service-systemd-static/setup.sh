set -euo pipefail
[ -d /var/lib/cfgm-test/case ] || { echo "not inside the test container" >&2; exit 1; }
# Static units: no [Install] section, so `systemctl enable` cannot enable them.
for u in cfgm-static cfgm-static-wanted; do
cat > /etc/systemd/system/$u.service <<UNIT
[Unit]
Description=a static unit for cfgm's tests
[Service]
ExecStart=/usr/bin/sleep infinity
UNIT
done
systemctl daemon-reload
[ "$(systemctl is-enabled cfgm-static || true)" = static ]
