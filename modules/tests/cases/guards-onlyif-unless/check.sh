set -euo pipefail
[ "$(cat "$ROOT/etc/cfgm-guard-yes")" = made ]
[ ! -e "$ROOT/etc/cfgm-guard-no" ]
[ "$(cat "$ROOT/etc/cfgm-guard-kept")" = "a local edit" ]
[ "$(cat "$ROOT/etc/cfgm-guard-unless-false")" = made ]
