set -euo pipefail
[ "$(cat "$ROOT/tmp/out")" = "hello daemon /tmp" ]
[ "$(chroot "$ROOT" stat -c %U "/tmp/out")" = daemon ]
