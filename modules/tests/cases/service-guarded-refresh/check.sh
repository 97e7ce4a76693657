set -euo pipefail
[ "$(cat "$ROOT/etc/cfgmdummy.conf")" = ok ]
[ "$(cat "$ROOT/var/log/cfgmdummy.log")" = reloaded ]
chroot "$ROOT" /etc/init.d/cfgmdummy status
