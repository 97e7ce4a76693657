set -euo pipefail
chroot "$ROOT" /etc/init.d/cfgmdummy status
ls "$ROOT"/etc/rc2.d | grep -qx 'S[0-9][0-9]cfgmdummy'
