set -euo pipefail
source ../../lib/sysv-dummy.sh
install_cfgmdummy

echo old > "$ROOT/etc/cfgmdummy.conf"
chroot "$ROOT" /etc/init.d/cfgmdummy start
