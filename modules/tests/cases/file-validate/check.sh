set -euo pipefail
d="$ROOT/etc/sudoers.d"
# refused: the old file is untouched (content, mode, mtime), no temporary left, no backup made
[ "$(cat "$d/cfgm-bad")" = '%admin ALL=(ALL) ALL' ]
[ "$(stat -c %a "$d/cfgm-bad")" = 440 ]
[ "$(stat -c %Y "$d/cfgm-bad")" = "$(date -d '2020-01-01 00:00' +%s)" ]
[ ! -e "$d/.cfgm-bad.cfgm-new" ]
! ls "$STATE/backups" | grep -q 'cfgm-bad'
# accepted: replaced (the old content backed up) and created
[ "$(cat "$d/cfgm-good")" = '%sudo ALL=(ALL:ALL) NOPASSWD: ALL' ]
ls "$STATE/backups" | grep -q 'cfgm-good'
[ "$(cat "$d/cfgm-new")" = 'Defaults:%sudo !lecture' ]
[ "$(stat -c %a "$d/cfgm-new")" = 440 ]
[ "$(stat -c %a "$d/cfgm-mode")" = 440 ]
# the whole of sudoers still parses
chroot "$ROOT" visudo -c
