set -euo pipefail
[ "$(cat "$ROOT/srv/cfgm-mover/notes")" = "notes of cfgm-mover" ]
[ ! -e "$ROOT/home/cfgm-mover" ]
[ "$(chroot "$ROOT" stat -c %U /srv/cfgm-mover)" = cfgm-mover ]
grep -q '^cfgm-mover:.*:/srv/cfgm-mover:' "$ROOT/etc/passwd"
grep -q '^cfgm-stayer:.*:/srv/cfgm-stayer:' "$ROOT/etc/passwd"
[ "$(cat "$ROOT/home/cfgm-stayer/notes")" = "notes of cfgm-stayer" ]
[ ! -e "$ROOT/srv/cfgm-stayer" ]
