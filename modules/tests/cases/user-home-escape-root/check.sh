set -euo pipefail
keys="$ROOT$OUTSIDE/homes/frank/.ssh/authorized_keys"
grep -q frank@laptop "$keys"
[ "$(chroot "$ROOT" stat -c '%a %U' "$OUTSIDE/homes/frank/.ssh/authorized_keys")" = "600 frank" ]
[ "$(chroot "$ROOT" stat -c '%a %U' "$OUTSIDE/homes/frank/.ssh")" = "700 frank" ]
