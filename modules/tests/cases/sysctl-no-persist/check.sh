set -euo pipefail
[ "$(cat "$ROOT/proc/sys/net/core/somaxconn")" = 2048 ]
[ ! -e "$ROOT/etc/sysctl.d/90-cfgm-net.core.somaxconn.conf" ]
