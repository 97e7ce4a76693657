set -euo pipefail
# A user's own directory symlink on the way: root must not write through it,
# wherever it points (inside the root or out).
chroot "$ROOT" useradd --create-home gina
mkdir -p "$ROOT/etc/cfgm-target"
ln -s /etc/cfgm-target "$ROOT/home/gina/.ssh"
chroot "$ROOT" chown -h gina:gina /home/gina/.ssh
mkdir -p "$OUTSIDE/target"
ln -s "$OUTSIDE/target" "$ROOT/home/gina/out"
chroot "$ROOT" chown -h gina:gina /home/gina/out
