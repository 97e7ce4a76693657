set -euo pipefail
[ ! -e "$ROOT/etc/cfgm-old" ]
[ ! -e "$ROOT/etc/cfgm-never" ]
