set -euo pipefail
chroot "$ROOT" groupadd --gid 3000 ops
chroot "$ROOT" useradd --uid 3000 --gid ops --groups adm --shell /bin/bash erin
