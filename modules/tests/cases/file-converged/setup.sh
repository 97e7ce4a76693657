set -euo pipefail
echo same > "$ROOT/etc/cfgm-motd"
chmod 0644 "$ROOT/etc/cfgm-motd"
