set -euo pipefail
# An absolute link out of the root (as `ROOT/etc -> /elsewhere`): inside
# the root it means ROOT$OUTSIDE/abs, which exists too.
mkdir -p "$OUTSIDE/abs" "$ROOT$OUTSIDE/abs"
echo outside > "$OUTSIDE/abs/app.conf"
echo inside > "$ROOT$OUTSIDE/abs/app.conf"
ln -s "$OUTSIDE/abs" "$ROOT/etc/cfgm-abs"
# A relative link climbing out: from ROOT/var/lib, ../../../outside is
# $OUTSIDE on the machine and ROOT/outside in the root.
mkdir -p "$OUTSIDE/rel" "$ROOT/outside/rel"
echo outside > "$OUTSIDE/rel/app.conf"
echo inside > "$ROOT/outside/rel/app.conf"
ln -s ../../../outside/rel "$ROOT/var/lib/cfgm-rel"
# Debian's own absolute link: the machine's /run must not see the write.
[ "$(readlink "$ROOT/var/run")" = /run ]
[ ! -e /run/cfgm-escape-probe ]
