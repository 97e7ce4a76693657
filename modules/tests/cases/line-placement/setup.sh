set -euo pipefail
printf '[server]\nport = 80\n[client]\nport = 81\n' > "$ROOT/etc/cfgm-app.ini"
printf '# flags\na=no\nb=no\nc=1\n# end\n' > "$ROOT/etc/cfgm-flags"
