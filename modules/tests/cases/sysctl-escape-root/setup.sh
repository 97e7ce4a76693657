set -euo pipefail
# /etc/sysctl.d is an absolute link out of the root; inside the root it
# means ROOT$OUTSIDE/sysctl.d.
rm -rf "$ROOT/etc/sysctl.d"
mkdir -p "$OUTSIDE/sysctl.d" "$ROOT$OUTSIDE/sysctl.d"
ln -s "$OUTSIDE/sysctl.d" "$ROOT/etc/sysctl.d"
echo "net.ipv4.tcp_keepalive_time = 600" > "$OUTSIDE/sysctl.d/90-cfgm-net.ipv4.tcp_keepalive_time.conf"
echo "net.ipv4.tcp_keepalive_time = 600" > "$ROOT$OUTSIDE/sysctl.d/90-cfgm-net.ipv4.tcp_keepalive_time.conf"
