set -euo pipefail
! grep -q '^frank:' "$ROOT/etc/passwd"
[ ! -e "$ROOT/etc/frank.conf" ]
