set -euo pipefail
d="$ROOT/etc/cfgm-app"
[ "$(cat "$d/include.conf")" = 'version = 2' ]
[ "$(cat "$d/main.conf")" = 'include include.conf' ]
[ ! -e "$d/.main.conf.cfgm-new" ]
