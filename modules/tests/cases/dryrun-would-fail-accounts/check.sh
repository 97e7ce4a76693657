set -euo pipefail
! grep -q '^cfgm-uid:' "$ROOT/etc/passwd"
! grep -q '^cfgm-groups:' "$ROOT/etc/passwd"
! grep -q '^cfgm-gid:' "$ROOT/etc/group"
grep -q '^cfgm-team:.*cfgm-member' "$ROOT/etc/group"
[ "$(chroot "$ROOT" stat -c %U:%G /etc/cfgm-owned)" = cfgm-member:cfgm-team ]
