set -euo pipefail
[ ! -e "$ROOT/etc/cfgm-nosuch.conf" ]
