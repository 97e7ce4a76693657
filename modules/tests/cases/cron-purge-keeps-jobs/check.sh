set -euo pipefail
[ "$(ls "$ROOT/etc/cron.d" | tr '\n' ' ')" = "cfgm-kept cfgm-tick " ]
