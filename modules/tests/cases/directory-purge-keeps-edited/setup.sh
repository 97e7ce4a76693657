set -euo pipefail
mkdir -p "$ROOT/etc/cfgm-purged" "$ROOT/home/stray" "$ROOT/home/cfgm-alice"
printf 'y = 2\n' > "$ROOT/etc/cfgm-purged/edited.conf"
printf 'junk\n' > "$ROOT/etc/cfgm-purged/unmanaged.conf"
