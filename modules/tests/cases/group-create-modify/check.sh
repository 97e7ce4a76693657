set -euo pipefail
grep -qx 'web:x:2500:' "$ROOT/etc/group"
gid=$(awk -F: '$1 == "sysgrp" {print $3}' "$ROOT/etc/group")
[ "$gid" -lt 1000 ]
grep -q '^staff:x:51:' "$ROOT/etc/group"
