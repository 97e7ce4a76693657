set -euo pipefail
mkdir -p "$OUTSIDE/abs" "$ROOT$OUTSIDE/abs"
ln -s /old "$OUTSIDE/abs/link"
ln -s /old "$ROOT$OUTSIDE/abs/link"
ln -s "$OUTSIDE/abs" "$ROOT/etc/cfgm-abs"
mkdir -p "$OUTSIDE/rel" "$ROOT/outside/rel"
ln -s ../../outside/rel "$ROOT/etc/cfgm-rel"
