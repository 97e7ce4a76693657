set -euo pipefail
printf '# managed in part by cfgm\n[server]\ntimeout = 30\nport = 80\n[client]\nport = 8080\n' | cmp - "$ROOT/etc/cfgm-app.ini"
printf 'a=yes\nb=yes\nc=1\n' | cmp - "$ROOT/etc/cfgm-flags"
printf 'made = true\n' | cmp - "$ROOT/etc/cfgm-new.conf"
[ "$(stat -c '%a %U' "$ROOT/etc/cfgm-new.conf")" = "644 root" ]
