set -euo pipefail
echo old > "$ROOT/etc/cfgm-stale"
