set -euo pipefail
chroot "$ROOT" dpkg-query -W -f '${Version}' procps | grep -qx '2:4.0.2-3'
