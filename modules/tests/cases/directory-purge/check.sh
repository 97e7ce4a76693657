set -euo pipefail
[ "$(ls "$ROOT/etc/cfgm.d")" = keep.conf ]
