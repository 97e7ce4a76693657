set -euo pipefail
mkdir -p "$ROOT/etc/cfgm.d/old-sub"
echo keep > "$ROOT/etc/cfgm.d/keep.conf"
echo stray > "$ROOT/etc/cfgm.d/stray.conf"
echo x > "$ROOT/etc/cfgm.d/old-sub/x"
