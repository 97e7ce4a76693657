set -euo pipefail
! chroot "$ROOT" /etc/init.d/cfgmdummy status || exit 1
! ls "$ROOT"/etc/rc[2-5].d | grep -q '^S[0-9][0-9]cfgmdummy$' || exit 1
