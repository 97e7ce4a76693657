set -euo pipefail
# Purged, removed and created inside the root ($OUTSIDE is checked by the runner).
[ -z "$(ls -A "$ROOT$OUTSIDE/abs/purged")" ]
[ ! -e "$ROOT$OUTSIDE/abs/gone" ]
[ "$(stat -c %a "$ROOT/outside/rel/made/deeper")" = 750 ]
