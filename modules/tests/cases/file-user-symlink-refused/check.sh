set -euo pipefail
[ ! -e "$ROOT/etc/cfgm-target/authorized_keys" ]
[ -z "$(ls -A "$ROOT/etc/cfgm-target")" ]
