set -euo pipefail
[ "$(chroot "$ROOT" stat -c '%a %U' "/home/dave/.ssh/authorized_keys")" = "600 dave" ]
