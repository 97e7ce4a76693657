set -euo pipefail
e="$ROOT/etc"
[ -d "$e/cfgm-dir" ] && [ -z "$(ls -A "$e/cfgm-dir")" ]
[ -d "$e/cfgm-dir2" ] && [ ! -L "$e/cfgm-dir2" ]
[ "$(cat "$e/cfgm-file")" = keep ]
[ -L "$e/cfgm-link" ] && [ "$(cat "$e/cfgm-target")" = target ]
[ ! -e "$e/cfgm-nosuch.conf" ] && [ ! -e "$e/cfgm-nodir" ]
[ "$(cat "$e/cfgm-newdir/b.conf")" = "parent declared" ]
[ "$(cat "$e/cfgm-made.conf")" = "y = 2" ]
