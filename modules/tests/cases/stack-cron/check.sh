set -euo pipefail
grep -qx 'EXTRA_OPTS="-L 15"' "$ROOT/etc/default/cron"
chroot "$ROOT" /etc/init.d/cron status
ls "$ROOT"/etc/rc2.d | grep -qx 'S[0-9][0-9]cron'
