set -euo pipefail
echo v1 > "$ROOT/etc/cfgm-app.conf"
