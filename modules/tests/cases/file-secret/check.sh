set -euo pipefail
[ "$(cat "$ROOT/etc/cfgm-token")" = s3cr3t-token-value-42 ]
[ "$(chroot "$ROOT" stat -c %a "/etc/cfgm-token")" = 600 ]
