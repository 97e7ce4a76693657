set -euo pipefail
[ "$(cat "$ROOT/proc/sys/net/core/somaxconn")" = 512 ]
[ ! -e "$ROOT/etc/sysctl.d/90-cfgm-net.core.nosuchkey.conf" ]
