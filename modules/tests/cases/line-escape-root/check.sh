set -euo pipefail
[ "$(cat "$ROOT/outside/rel/app.conf")" = "a = 2" ]
[ "$(cat "$ROOT/outside/dotdot.conf")" = "$(printf 'a=1\nb = 1')" ]
