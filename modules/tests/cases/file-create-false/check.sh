set -euo pipefail
[ "$(chroot "$ROOT" stat -c '%a %U %G' /etc/ssh/ssh_host_ed25519_key)" = "600 root root" ]
[ "$(cat "$ROOT/etc/ssh/ssh_host_ed25519_key")" = key ]
[ ! -e "$ROOT/etc/ssh/ssh_host_ecdsa_key" ]
