set -euo pipefail
# An absolute link out of the root; inside the root it means ROOT$OUTSIDE/abs.
for top in "$OUTSIDE" "$ROOT$OUTSIDE"; do
    mkdir -p "$top/abs/purged/stray-dir" "$top/abs/gone/sub"
    echo stray > "$top/abs/purged/stray.conf"
    echo stray > "$top/abs/purged/stray-dir/x"
    echo gone > "$top/abs/gone/sub/y"
done
ln -s "$OUTSIDE/abs" "$ROOT/srv/cfgm-abs"
# A relative link climbing out: ../../outside from ROOT/srv.
mkdir -p "$OUTSIDE/rel" "$ROOT/outside/rel"
ln -s ../../outside/rel "$ROOT/srv/cfgm-rel"
