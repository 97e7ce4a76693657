set -euo pipefail
[ "$(cat "$ROOT/outside/rel/app.conf")" = "a = 2" ]
