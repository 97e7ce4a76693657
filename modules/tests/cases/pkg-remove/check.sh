set -euo pipefail
! chroot "$ROOT" dpkg-query -W -f '${Status}\n' iputils-ping | grep -qx 'install ok installed'
[ ! -e "$ROOT/usr/bin/ping" ]
