set -euo pipefail
! grep -q '^carol:' "$ROOT/etc/passwd" || exit 1
! grep -q '^oldgrp:' "$ROOT/etc/group" || exit 1
