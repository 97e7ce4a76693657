set -euo pipefail
chroot "$ROOT" dpkg-query -W -f '${Status}\n' jq | grep -qx 'install ok installed'
[ ! -e "$ROOT/etc/nosuchpkg.conf" ]
