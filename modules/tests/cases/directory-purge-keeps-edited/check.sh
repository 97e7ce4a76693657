set -euo pipefail
d="$ROOT/etc/cfgm-purged"
printf 'y = 2\nx = 1\n' | cmp - "$d/edited.conf"
[ "$(cat "$d/managed.conf")" = managed ]
[ -e "$d/stamp" ]
[ ! -e "$d/unmanaged.conf" ]
[ ! -e "$ROOT/home/stray" ]
grep -q '^cfgm-alice:' "$ROOT/etc/passwd"
[ -d "$ROOT/home/cfgm-alice" ]
