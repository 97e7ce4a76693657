set -euo pipefail
# Homes under a root-owned absolute link out of the root; inside the root
# it means ROOT$OUTSIDE/homes.
mkdir -p "$OUTSIDE/homes" "$ROOT$OUTSIDE/homes"
ln -s "$OUTSIDE/homes" "$ROOT/srv/cfgm-homes"
chroot "$ROOT" useradd --no-create-home --home-dir /srv/cfgm-homes/frank frank
