set -euo pipefail
mkdir "$ROOT/etc/cfgm-dir" "$ROOT/etc/cfgm-dir2"
echo keep > "$ROOT/etc/cfgm-file"
echo target > "$ROOT/etc/cfgm-target"
ln -s /etc/cfgm-target "$ROOT/etc/cfgm-link"
