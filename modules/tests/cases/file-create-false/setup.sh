set -euo pipefail
mkdir -p "$ROOT/etc/ssh"
rm -f "$ROOT/etc/ssh/ssh_host_ecdsa_key"
echo key > "$ROOT/etc/ssh/ssh_host_ed25519_key"
chmod 0644 "$ROOT/etc/ssh/ssh_host_ed25519_key"
chroot "$ROOT" chgrp adm /etc/ssh/ssh_host_ed25519_key
