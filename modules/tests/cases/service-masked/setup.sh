set -euo pipefail
source ../../lib/sysv-dummy.sh
install_cfgmdummy

chroot "$ROOT" update-rc.d cfgmdummy defaults >/dev/null 2>&1
chroot "$ROOT" /etc/init.d/cfgmdummy start
mkdir -p "$ROOT/etc/systemd/system"
ln -s /dev/null "$ROOT/etc/systemd/system/cfgmother.service"
