set -euo pipefail
mkdir -p "$ROOT/etc/cfgm-guard-dir"
echo "a local edit" > "$ROOT/etc/cfgm-guard-kept"
