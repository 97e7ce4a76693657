set -euo pipefail
mkdir -p "$ROOT/etc/cfgm.d"
chmod 0755 "$ROOT/etc/cfgm.d"
echo a > "$ROOT/etc/cfgm.d/a.conf"
