set -euo pipefail
chroot "$ROOT" useradd --create-home dave
mkdir -p "$ROOT/home/dave/.ssh"
printf '%s\n' "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMa8mK9tqJxVnO2Pi0Kq6bV3l7dR0Q0o2C4eH9wXyZc1 alice@laptop" > "$ROOT/home/dave/.ssh/authorized_keys"
chmod 0664 "$ROOT/home/dave/.ssh/authorized_keys"
