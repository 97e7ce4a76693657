set -euo pipefail
grep -qx 'devs:x:2001:' "$ROOT/etc/group"
grep -qx 'alice:x:2001:2001:Alice Example:/home/alice:/bin/bash' "$ROOT/etc/passwd"
grep -q '^adm:x:4:.*alice' "$ROOT/etc/group"
grep -q '^staff:x:50:.*alice' "$ROOT/etc/group"
[ "$(chroot "$ROOT" stat -c '%a %U %G' "/home/alice/.ssh")" = "700 alice devs" ]
[ "$(chroot "$ROOT" stat -c '%a %U %G' "/home/alice/.ssh/authorized_keys")" = "600 alice devs" ]
printf '%s\n%s\n' "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMa8mK9tqJxVnO2Pi0Kq6bV3l7dR0Q0o2C4eH9wXyZc1 alice@laptop" "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBv0kQ5s7WmP2n8c1u4YyT6aJ9h3xL0eF2rG5dS8vN1q alice@desk" | cmp - "$ROOT/home/alice/.ssh/authorized_keys"
