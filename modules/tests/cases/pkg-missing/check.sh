set -euo pipefail
chroot "$ROOT" dpkg-query -W -f '${Status}\n' jq | grep -qx 'install ok installed'
! chroot "$ROOT" dpkg-query -W -f '${Status}\n' hello | grep -qx 'install ok installed' || exit 1
[ ! -e "$ROOT/etc/nosuchpkg.conf" ]
