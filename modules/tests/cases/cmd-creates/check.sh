set -euo pipefail
[ "$(cat "$ROOT/var/lib/cfgm-marker")" = made ]
[ ! -e "$ROOT/tmp/never" ]
