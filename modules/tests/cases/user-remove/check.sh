set -euo pipefail
! grep -q '^carol:' "$ROOT/etc/passwd"
! grep -q '^oldgrp:' "$ROOT/etc/group"
