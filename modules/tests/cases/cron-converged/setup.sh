set -euo pipefail
printf '# cfgm: cron[cfgm-tick]; changes here are overwritten\n0 3 * * * root true\n' > "$ROOT/etc/cron.d/cfgm-tick"
chmod 0644 "$ROOT/etc/cron.d/cfgm-tick"
