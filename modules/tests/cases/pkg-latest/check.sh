set -euo pipefail
cand=$(chroot "$ROOT" apt-cache policy jq | awk '/Candidate:/ {print $2}')
[ "$(chroot "$ROOT" dpkg-query -W -f '${Version}' jq)" = "$cand" ]
[ "$cand" != "$(cat "$OUTSIDE/jq-old")" ]
chroot "$ROOT" dpkg-query -W -f '${Status}' tree | grep -q 'ok installed'
