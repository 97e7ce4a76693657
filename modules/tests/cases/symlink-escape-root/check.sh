set -euo pipefail
[ "$(readlink "$ROOT$OUTSIDE/abs/link")" = /new ]
[ "$(readlink "$ROOT$OUTSIDE/abs/made")" = /etc/hostname ]
[ "$(readlink "$ROOT/outside/rel/made")" = ../x ]
