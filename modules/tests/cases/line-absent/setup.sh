set -euo pipefail
printf 'a = 1\ndebug = true\ntrace=on\nb = 2\ndebug = true\n' > "$ROOT/etc/cfgm-app.conf"
