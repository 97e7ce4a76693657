set -euo pipefail
[ "$(readlink "$ROOT/etc/cfgm-link")" = /etc/hostname ]
[ "$(readlink "$ROOT/etc/cfgm-new-link")" = /etc/os-release ]
[ ! -L "$ROOT/etc/cfgm-gone" ]
