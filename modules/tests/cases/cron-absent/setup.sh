set -euo pipefail
echo '@daily root true' > "$ROOT/etc/cron.d/cfgm-old"
