set -euo pipefail
[ -d /var/lib/cfgm-test/case ] || { echo "not inside the test container" >&2; exit 1; }
cat > /etc/systemd/system/cfgm-dummy.service <<'UNIT'
[Unit]
Description=a sleeping daemon for cfgm's tests
[Service]
ExecStart=/usr/bin/sleep infinity
ExecReload=/bin/sh -c 'echo reloaded >> /run/cfgm-dummy.log'
[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload

echo v1 > /etc/cfgm-dummy.conf
