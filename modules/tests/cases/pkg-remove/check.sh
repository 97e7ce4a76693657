set -euo pipefail
! chroot "$ROOT" dpkg-query -W -f '${Status}\n' iputils-ping | grep -qx 'install ok installed' || exit 1
[ ! -e "$ROOT/usr/bin/ping" ]
