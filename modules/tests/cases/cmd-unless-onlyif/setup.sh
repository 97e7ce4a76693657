set -euo pipefail
echo old > "$ROOT/etc/cfgm-flag-b"
