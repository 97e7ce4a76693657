set -euo pipefail
[ ! -e "$ROOT/etc/cfgm-stale" ]
[ "$(cat "$ROOT/etc/cfgm-ran")" = ran ]
