set -euo pipefail
chroot "$ROOT" useradd cfgm-old
chroot "$ROOT" useradd cfgm-kept
chroot "$ROOT" groupadd cfgm-ops
chroot "$ROOT" gpasswd -a cfgm-kept cfgm-ops > /dev/null
