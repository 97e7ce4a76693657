set -euo pipefail
chroot "$ROOT" useradd --create-home --uid 2050 --shell /bin/sh --groups sudo,staff bob
mkdir -p "$ROOT/home/bob/.ssh"
printf '%s\n%s\n' "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMa8mK9tqJxVnO2Pi0Kq6bV3l7dR0Q0o2C4eH9wXyZc1 alice@laptop" "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBv0kQ5s7WmP2n8c1u4YyT6aJ9h3xL0eF2rG5dS8vN1q alice@desk" > "$ROOT/home/bob/.ssh/authorized_keys"
chmod 0644 "$ROOT/home/bob/.ssh/authorized_keys"
