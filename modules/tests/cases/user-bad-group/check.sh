set -euo pipefail
! grep -q '^frank:' "$ROOT/etc/passwd" || exit 1
[ ! -e "$ROOT/etc/frank.conf" ]
