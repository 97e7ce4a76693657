set -euo pipefail
[ ! -e "$ROOT/etc/cron.d/cfgm-tick" ]
