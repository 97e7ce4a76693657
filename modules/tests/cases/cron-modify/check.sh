set -euo pipefail
f="$ROOT/etc/cron.d/cfgm-tick"
[ "$(stat -c '%a %U %G' "$f")" = "644 root root" ]
[ "$(tail -n 1 "$f")" = "@hourly ticker /usr/bin/true" ]
chroot "$ROOT" id ticker
# The old file was kept as a backup.
ls "$STATE"/backups/etc%cron.d%cfgm-tick-*/ | grep -q .
