set -euo pipefail
chroot "$ROOT" /etc/init.d/cfgmdummy status
