set -euo pipefail
echo keep > "$ROOT/etc/cfgm-owned"
chmod 0644 "$ROOT/etc/cfgm-owned"
