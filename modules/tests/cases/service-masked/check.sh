set -euo pipefail
! chroot "$ROOT" /etc/init.d/cfgmdummy status || exit 1
[ "$(readlink "$ROOT/etc/systemd/system/cfgmdummy.service")" = /dev/null ]
[ ! -e "$ROOT/etc/systemd/system/cfgmother.service" ] && [ ! -L "$ROOT/etc/systemd/system/cfgmother.service" ]
