set -euo pipefail
line=$(grep '^cfgm-ops:' "$ROOT/etc/group")
for u in cfgm-new cfgm-old cfgm-kept; do echo "$line" | cut -d: -f4 | tr , '\n' | grep -qx "$u"; done
! grep -q '^cfgm-bad:' "$ROOT/etc/group"
