set -euo pipefail
printf 'a = 1\nb = 2\n' | cmp - "$ROOT/etc/cfgm-app.conf"
