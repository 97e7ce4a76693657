set -euo pipefail
chroot "$ROOT" dpkg-query -W -f '${Status}\n' tree | grep -qx 'install ok installed'
[ "$(chroot "$ROOT" dpkg-query -W -f '${Version}' hello)" = 2.10-3 ]
chroot "$ROOT" hello | grep -q 'Hello, world'
[ -f "$ROOT/etc/cfgm-after-pkgs" ]
