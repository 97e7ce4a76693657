set -euo pipefail
[ "$(chroot "$ROOT" stat -c '%a %U %G' "/etc/cfgm-owned")" = "600 daemon adm" ]
[ "$(cat "$ROOT/etc/cfgm-owned")" = keep ]
