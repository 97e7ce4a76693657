set -euo pipefail
chroot "$ROOT" dpkg-query -W -f '${Status}\n' tree | grep -qx 'install ok installed'
ls "$ROOT"/var/lib/apt/lists | grep -q '_Packages$'
