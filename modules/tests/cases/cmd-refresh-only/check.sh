set -euo pipefail
[ "$(cat "$ROOT/var/log/cfgm-app-reloads")" = v2 ]
[ ! -e "$ROOT/tmp/idle-ran" ]
