set -euo pipefail
chroot "$ROOT" useradd carol
chroot "$ROOT" groupadd oldgrp
