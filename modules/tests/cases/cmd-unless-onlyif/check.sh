set -euo pipefail
[ ! -e "$ROOT/tmp/unless-ran" ] && [ ! -e "$ROOT/tmp/onlyif-ran" ]
[ "$(cat "$ROOT/etc/cfgm-flag-a")" = yes ]
[ "$(cat "$ROOT/etc/cfgm-flag-b")" = new ]
