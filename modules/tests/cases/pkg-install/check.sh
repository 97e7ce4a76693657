set -euo pipefail
chroot "$ROOT" dpkg-query -W -f '${Status}\n' tree | grep -qx 'install ok installed'
[ "$(chroot "$ROOT" dpkg-query -W -f '${Version}' hello)" = 2.10-3 ]
chroot "$ROOT" hello | grep -q 'Hello, world'
[ -f "$ROOT/etc/cfgm-after-pkgs" ]
# Both installs went to apt in ONE transaction: one apt history entry names both.
grep '^Commandline: apt-get install' "$ROOT/var/log/apt/history.log" | grep ' tree' | grep -q ' hello=2.10-3'
[ "$(grep -c '^Commandline: apt-get install.* tree' "$ROOT/var/log/apt/history.log")" = 1 ]
