set -euo pipefail
# /etc/sysctl.d is an absolute link out of the root; inside the root it
# means ROOT$OUTSIDE/sysctl.d.
rm -rf "$ROOT/etc/sysctl.d"
mkdir -p "$OUTSIDE/sysctl.d" "$ROOT$OUTSIDE/sysctl.d"
ln -s "$OUTSIDE/sysctl.d" "$ROOT/etc/sysctl.d"
echo "vm.dirty_ratio = 5" > "$OUTSIDE/sysctl.d/90-cfgm-vm.dirty_ratio.conf"
echo "vm.dirty_ratio = 5" > "$ROOT$OUTSIDE/sysctl.d/90-cfgm-vm.dirty_ratio.conf"
