set -euo pipefail
[ -d /var/lib/cfgm-test/case ] || { echo "not inside the test container" >&2; exit 1; }
# Where a package puts its unit: masking links /etc/systemd/system/ over it.
cat > /usr/lib/systemd/system/cfgm-dummy.service <<'UNIT'
[Unit]
Description=a sleeping daemon for cfgm's tests
[Service]
ExecStart=/usr/bin/sleep infinity
[Install]
WantedBy=multi-user.target
UNIT
cp /usr/lib/systemd/system/cfgm-dummy.service /usr/lib/systemd/system/cfgm-other.service
systemctl daemon-reload
systemctl enable --now cfgm-dummy 2>/dev/null
systemctl mask cfgm-other 2>/dev/null
