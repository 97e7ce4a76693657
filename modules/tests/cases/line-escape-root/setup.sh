set -euo pipefail
# A relative link climbing out: ../../outside from ROOT/etc.
mkdir -p "$OUTSIDE/rel" "$ROOT/outside/rel"
ln -s ../../outside/rel "$ROOT/etc/cfgm-rel"
for f in "$OUTSIDE/rel/app.conf" "$ROOT/outside/rel/app.conf"; do
    printf 'a=1\n' > "$f"
done
