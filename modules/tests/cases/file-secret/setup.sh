set -euo pipefail
printf 'old-secret-value-17\n' > "$ROOT/etc/cfgm-token"
