set -euo pipefail
[ "$(cat "$ROOT/etc/cfgm-motd")" = welcome ]
[ "$(chroot "$ROOT" stat -c '%a %U %G' "/etc/cfgm-motd")" = "640 root adm" ]
