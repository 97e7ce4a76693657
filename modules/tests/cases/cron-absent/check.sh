set -euo pipefail
[ ! -e "$ROOT/etc/cron.d/cfgm-old" ]
[ ! -e "$ROOT/etc/cron.d/cfgm-never" ]
[ -f "$ROOT/etc/cron.d/e2scrub_all" ]
