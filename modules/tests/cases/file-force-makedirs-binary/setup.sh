set -euo pipefail
mkdir -p "$ROOT/etc/cfgm-was-dir/sub"
echo inner > "$ROOT/etc/cfgm-was-dir/sub/inner"
echo target > "$ROOT/etc/cfgm-target"
ln -s /etc/cfgm-target "$ROOT/etc/cfgm-was-link"
