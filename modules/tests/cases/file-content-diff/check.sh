set -euo pipefail
[ "$(sed -n 2p "$ROOT/etc/cfgm-motd")" = "line two changed" ]
# an unmanaged mode is kept
[ "$(chroot "$ROOT" stat -c %a "/etc/cfgm-motd")" = 600 ]
