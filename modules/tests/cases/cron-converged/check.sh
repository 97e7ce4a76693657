set -euo pipefail
[ "$(tail -n 1 "$ROOT/etc/cron.d/cfgm-tick")" = "0 3 * * * root true" ]
