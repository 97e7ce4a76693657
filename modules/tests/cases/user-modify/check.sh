set -euo pipefail
grep -qx 'bob:x:2100:[0-9]*:Bob:/home/bob:/bin/bash' "$ROOT/etc/passwd"
grep -q '^adm:.*bob' "$ROOT/etc/group"
! grep -q '^sudo:.*bob' "$ROOT/etc/group" || exit 1
! grep -q '^staff:.*bob' "$ROOT/etc/group" || exit 1
[ "$(cat "$ROOT/home/bob/.ssh/authorized_keys")" = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMa8mK9tqJxVnO2Pi0Kq6bV3l7dR0Q0o2C4eH9wXyZc1 alice@laptop" ]
[ "$(chroot "$ROOT" stat -c '%a %U' "/home/bob/.ssh/authorized_keys" "/home/bob/.ssh")" = "600 bob
700 bob" ]
