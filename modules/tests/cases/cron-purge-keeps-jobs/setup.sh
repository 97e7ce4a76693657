set -euo pipefail
printf '# cfgm: cron[cfgm-kept]; changes here are overwritten\n@weekly root true\n' > "$ROOT/etc/cron.d/cfgm-kept"
