set -euo pipefail
uid=$(awk -F: '$1 == "svc" {print $3}' "$ROOT/etc/passwd")
[ "$uid" -lt 1000 ]
grep -q '^svc:x:[0-9]*:[0-9]*:a service account:/var/lib/svc:/usr/sbin/nologin$' "$ROOT/etc/passwd"
! grep -q '^[^:]*:[^:]*:[^:]*:.*svc' "$ROOT/etc/group" || exit 1 || exit 1
