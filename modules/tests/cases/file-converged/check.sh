set -euo pipefail
[ "$(cat "$ROOT/etc/cfgm-motd")" = same ]
