set -euo pipefail
# What the report said is what dpkg shows.
[ "$(chroot "$ROOT" dpkg-query -W -f '${Status} ${Version}' cfgm-good)" = 'install ok installed 1.0' ]
[ "$(chroot "$ROOT" dpkg-query -W -f '${Status} ${Version}' cfgm-bad)" = 'install ok half-configured 1.0' ]
[ "$(cat "$ROOT/usr/share/cfgm-good/marker")" = cfgm-good ]
# Both went to apt in ONE transaction first.
[ "$(grep '^Commandline: apt-get install' "$ROOT/var/log/apt/history.log" | grep ' cfgm-good' | grep -c ' cfgm-bad')" = 1 ]
