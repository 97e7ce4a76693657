set -euo pipefail
[ "$(chroot "$ROOT" stat -c '%a %U %G' "/srv/cfgm/data")" = "750 daemon adm" ]
