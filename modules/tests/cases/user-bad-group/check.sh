set -euo pipefail
! grep -q '^frank:' "$ROOT/etc/passwd" || exit 1
[ ! -e "$ROOT/etc/frank.conf" ]
# refused before useradd ran: the account databases untouched, no lock left
stat -c '%n %Y %s' "$ROOT"/etc/{passwd,group,shadow,gshadow} | cmp - "$OUTSIDE/etc-stamps"
! ls "$ROOT"/etc/*.lock 2>/dev/null | grep -q .
