set -euo pipefail
[ -f "$ROOT/etc/cfgm.d/a.conf" ]
