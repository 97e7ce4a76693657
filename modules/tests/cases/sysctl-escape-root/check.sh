set -euo pipefail
[ "$(cat "$ROOT$OUTSIDE/sysctl.d/90-cfgm-net.core.somaxconn.conf")" = "net.core.somaxconn = 512" ]
[ ! -e "$ROOT$OUTSIDE/sysctl.d/90-cfgm-net.ipv4.tcp_keepalive_time.conf" ]
