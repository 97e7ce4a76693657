set -euo pipefail
f="$ROOT/etc/cron.d/cfgm-tick"
[ "$(stat -c '%a %U %G' "$f")" = "644 root root" ]
diff -u - "$f" <<'JOB'
# cfgm: cron[cfgm-tick]; changes here are overwritten
# a tick every five minutes, office hours
MAILTO=""
PATH=/usr/bin:/bin
TICKS=3
*/5 8-18 * * mon-fri root date +\%s >> /var/log/cfgm-tick.log
JOB
# The base's own job is left alone.
[ -f "$ROOT/etc/cron.d/e2scrub_all" ]
# cron sees a change by /etc/cron.d's mtime, in whole seconds: it was
# touched again in a later second than the job was written.
[ "$(stat -c %Y "$ROOT/etc/cron.d")" -gt "$(stat -c %Y "$f")" ]
