set -euo pipefail
mkdir -p "$ROOT/etc/cfgm-app"
printf 'version = 1\n' > "$ROOT/etc/cfgm-app/include.conf"
