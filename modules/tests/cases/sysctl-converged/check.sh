set -euo pipefail
[ "$(cat "$ROOT/proc/sys/net/core/somaxconn")" = 4096 ]
